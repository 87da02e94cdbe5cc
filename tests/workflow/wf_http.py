"""A real HTTP server on 127.0.0.1 standing in for the CTK's petstore and httpbin."""

from __future__ import annotations

import base64
import json
from http.server import BaseHTTPRequestHandler

PETS = {
    1: {"id": 1, "name": "Rex", "status": "available"},
    2: {"id": 2, "name": "Milou", "status": "available"},
}


class Handler(BaseHTTPRequestHandler):
    calls: list[str] = []

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        Handler.calls.append(f"GET {self.path}")
        path = self.path.split("?")[0]
        if path == "/v2/pet/findByStatus":
            return self._send(200, list(PETS.values()))
        if path.startswith("/v2/pet/getPetByName/"):
            return self._send(404, {"message": "no such pet"})
        if path.startswith("/v2/pet/"):
            pet = PETS.get(int(path.rsplit("/", 1)[1]))
            return self._send(200 if pet else 404, pet or {"message": "not found"})
        if path.startswith("/basic-auth/"):
            _, _, user, password = path.split("/")
            want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            ok = self.headers.get("authorization") == want
            return self._send(200 if ok else 401, {"authenticated": ok})
        return self._send(404, {"message": "unknown"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"null")
        Handler.calls.append(f"POST {self.path} {json.dumps(body)}")
        return self._send(201, {"received": body})
