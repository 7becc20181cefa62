// Node's built-in WebSocket client against `wsctl serve`, for the interoperability tests.
//
//     node --experimental-websocket node_client.mjs URL SCENARIO
//
// Prints one JSON object on stdout (or {"error": "..."}). Every wait has a timeout.
//
//   echo_text    send a text message, report the echo
//   echo_binary  send 1 KiB of binary, report the echo
//   close        close with 4000 and report the code the server answers with

const [url, scenario] = process.argv.slice(2);

function open(target) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target);
    ws.binaryType = "arraybuffer";
    const timer = setTimeout(() => reject(new Error("open timed out")), 5000);
    ws.addEventListener("open", () => { clearTimeout(timer); resolve(ws); });
    ws.addEventListener("error", () => { clearTimeout(timer); reject(new Error("connection failed")); });
  });
}

function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no message within 5 s")), 5000);
    ws.addEventListener("message", (event) => { clearTimeout(timer); resolve(event.data); }, { once: true });
    ws.addEventListener("close", (event) => { clearTimeout(timer); reject(new Error(`closed with ${event.code}`)); }, { once: true });
  });
}

function closed(ws) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no close within 5 s")), 5000);
    ws.addEventListener("close", (event) => { clearTimeout(timer); resolve(event); }, { once: true });
  });
}

function describe(data) {
  if (typeof data === "string") return { type: "text", text: data };
  return { type: "binary", length: data.byteLength, hex: Buffer.from(data).toString("hex") };
}

const scenarios = {
  async echo_text() {
    const ws = await open(url);
    const text = "hello from node ✓";
    ws.send(text);
    const reply = await nextMessage(ws);
    ws.close(1000);
    await closed(ws);
    return { sent: text, received: describe(reply), extensions: ws.extensions, protocol: ws.protocol };
  },
  async echo_binary() {
    const ws = await open(url);
    const data = new Uint8Array(1024).map((_, i) => (i * 7) & 0xff);
    ws.send(data);
    const reply = await nextMessage(ws);
    ws.close(1000);
    await closed(ws);
    return { sent_hex: Buffer.from(data).toString("hex"), received: describe(reply) };
  },
  async close() {
    const ws = await open(url);
    ws.close(4000, "node says bye");
    const event = await closed(ws);
    return { code: event.code, reason: event.reason, was_clean: event.wasClean };
  },
};

try {
  if (typeof WebSocket !== "function") throw new Error("this node has no global WebSocket");
  const result = await scenarios[scenario]();
  console.log(JSON.stringify({ ...result, node_version: process.version }));
} catch (error) {
  console.log(JSON.stringify({ error: String(error), node_version: process.version }));
}
process.exit(0);
