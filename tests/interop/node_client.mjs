// Node ws against examples/echo_server started with --token.
// usage: node node_client.mjs ws://127.0.0.1:PORT TOKEN   (NODE_PATH must reach `ws`)
// Node ws writes the subprotocol list without a space: `access_token,T`.
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const WebSocket = require("ws");

const [url, token] = process.argv.slice(2);
const hostport = url.split("://")[1].replace(/\/$/, "");

function open(name, target, protocols, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target, protocols, options);
    ws.on("open", () => resolve(ws));
    ws.on("unexpected-response", (_req, res) => reject(Object.assign(new Error(`${name}: ${res.statusCode}`), { res })));
    ws.on("error", reject);
  });
}

function next(ws) {
  return new Promise((resolve, reject) => {
    ws.once("message", (data, isBinary) => resolve({ data, isBinary }));
    ws.once("close", (code) => reject(new Error(`closed ${code}`)));
  });
}

async function echo(name, target, protocols, options) {
  const ws = await open(name, target, protocols, options);
  ws.send("héllo");
  let m = await next(ws);
  if (m.isBinary || m.data.toString() !== "héllo") throw new Error(`${name}: text echo`);
  const blob = Buffer.alloc(200000, 7);
  ws.send(blob);
  m = await next(ws);
  if (!m.isBinary || !blob.equals(m.data)) throw new Error(`${name}: binary echo`);
  if (protocols && ws.protocol !== "access_token") throw new Error(`${name}: protocol ${ws.protocol}`);
  await new Promise((resolve) => { ws.once("close", resolve); ws.close(1000); });
  console.log(`ok   ${name}`);
}

async function refused(name, options) {
  try {
    await open(name, `${url}/`, undefined, options);
  } catch (e) {
    if (!e.res || e.res.statusCode !== 401) throw e;
    const challenges = e.res.headers["www-authenticate"];
    if (!/Bearer/.test(challenges) || !/Basic/.test(challenges)) throw new Error(`${name}: ${challenges}`);
    console.log(`ok   ${name}: 401`);
    return;
  }
  throw new Error(`${name}: accepted`);
}

await echo("bearer header", `${url}/`, undefined, { headers: { Authorization: `Bearer ${token}` } });
await echo("basic userinfo URL", `ws://token:${token}@${hostport}/`);
await echo("subprotocol slot", `${url}/`, ["access_token", token]);
await echo("query parameter", `${url}/?token=${token}`);
await echo("cookie", `${url}/`, undefined, { headers: { Cookie: `token=${token}` } });
await refused("wrong bearer", { headers: { Authorization: "Bearer wrong" } });
await refused("no credential");
