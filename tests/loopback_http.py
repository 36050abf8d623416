"""An HTTP server on 127.0.0.1 serving a folder from a thread of the test process: remote storage without the
internet. It answers ``Range`` requests as object stores do (or ignores them, as ``python -m http.server``
does) and logs every path it was asked for."""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import re
import threading
from typing import Iterator


class _Handler(http.server.SimpleHTTPRequestHandler):
    ranges = True
    requested: list

    def log_message(self, *args) -> None:  # quiet: the test reads ``requested`` instead
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.requested.append(self.path)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = self.translate_path(self.path)
        if not (self.ranges and match and os.path.isfile(path)):
            return super().do_GET()
        with open(path, "rb") as handle:
            data = handle.read()
        start = int(match.group(1))
        end = int(match.group(2)) + 1 if match.group(2) else len(data)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        self.wfile.write(data[start:end])


@contextlib.contextmanager
def serve_folder(folder, ranges: bool = True) -> Iterator[tuple[str, list]]:
    """``with serve_folder(path) as (base_url, requested)``: ``base_url`` serves ``folder``; ``requested``
    collects the paths of the GET requests."""
    requested: list = []
    handler = type("Handler", (_Handler,), {"ranges": ranges, "requested": requested})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()
