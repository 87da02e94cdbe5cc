// Preloaded into npm MCP servers the tests start (`node --import ./loopback.mjs`): a
// server that listens on a port alone (`app.listen(PORT)`, every interface) listens on
// 127.0.0.1 instead, so a test never opens a port beyond this machine.
import net from "node:net";

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" || (typeof args[0] === "string" && /^\d+$/.test(args[0]))) {
    const [port, ...rest] = args;
    const host = typeof rest[0] === "string" ? rest.shift() : "127.0.0.1";
    return listen.call(this, Number(port), host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host, ...rest);
  }
  return listen.apply(this, args);
};
