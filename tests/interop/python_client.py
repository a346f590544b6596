"""Python websockets against examples/echo_server started with --token.

usage: python_client.py ws://127.0.0.1:PORT TOKEN
Each carrier a Python program can use must open and echo; a wrong token must be
seen by the client as a 401. Exits non-zero on the first failure.
"""
import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

URL, TOKEN = sys.argv[1].rstrip("/"), sys.argv[2]
HOSTPORT = URL.split("://", 1)[1]


async def echo(name, **kw):
    url = kw.pop("url", URL + "/")
    async with connect(url, **kw) as ws:
        await ws.send("héllo")
        assert await ws.recv() == "héllo", name
        blob = bytes(range(256)) * 1000
        await ws.send(blob)
        assert await ws.recv() == blob, name
        if "subprotocols" in kw:
            assert ws.subprotocol == "access_token", ws.subprotocol
    print(f"ok   {name}")


async def refused(name, **kw):
    try:
        async with connect(URL + "/", **kw):
            pass
    except InvalidStatus as e:
        assert e.response.status_code == 401, e.response.status_code
        challenges = e.response.headers.get_all("WWW-Authenticate")
        assert any(c.startswith("Bearer") for c in challenges), challenges
        assert any(c.startswith("Basic") for c in challenges), challenges
        assert b"wrong" not in e.response.body, "credential echoed"
        print(f"ok   {name}: 401")
        return
    raise AssertionError(f"{name}: accepted")


async def main():
    await echo("bearer header", additional_headers={"Authorization": f"Bearer {TOKEN}"})
    await echo("basic userinfo URL", url=f"ws://token:{TOKEN}@{HOSTPORT}/")
    await echo("subprotocol slot", subprotocols=["access_token", TOKEN])
    await echo("query parameter", url=f"{URL}/?token={TOKEN}")
    await echo("cookie", additional_headers={"Cookie": f"token={TOKEN}"})
    await refused("wrong bearer", additional_headers={"Authorization": "Bearer wrong"})
    await refused("no credential")


asyncio.run(main())
