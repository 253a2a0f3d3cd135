"""`comfy-runpod ui`: the local ComfyUI editor, with its Queue button running the workflow on the endpoint.

Its flags are client/parsers/ui.py; this package is what it runs:

app.py         wires the parts together and serves until Ctrl-C
server.py      the HTTP + WebSocket reverse proxy in front of the local ComfyUI (aiohttp)
facts.py       the endpoint's diagnose, and the judgement of a prompt against it
jobs.py        one prompt run on the endpoint, told to the editor as ComfyUI's own messages
protocol.py    ComfyUI's message, queue and history shapes (pure)
local_comfy.py the project's CPU ComfyUI started with the editor's front-end package
"""
