"""Shared test plumbing: attach guest console logs to failing tests' reports."""

import pytest


def pytest_report_header(config):
    """Which hot path runs (compiled or pure Python) and which guest kernels this run boots."""
    from vhw import compiled
    from vhw.errors import VhwError
    from vhw.guests.images import GUESTS, find_image

    lines = [f"vhw hot path: {compiled.status()}"]
    for name in sorted(GUESTS):
        try:
            image = find_image(name)
        except VhwError:
            continue
        lines.append(f"vhw guest {name}: " + (f"kernel {image.kernel_version} ({image.path.name})"
                                               if image else "not built yet (built on first use)"))
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for machine_dir in getattr(item, "vhw_machine_dirs", []):
            for name in ("console.log", "qemu.stderr", "qemu.argv"):
                f = machine_dir / name
                if f.is_file():
                    text = f.read_bytes()[-20000:].decode(errors="replace")
                    rep.sections.append((f"vhw {machine_dir.name}/{name}", text))


class FileServer:
    """A local HTTP server standing in for an OS project's download site.

    ``files`` maps URL paths to bytes.  Knobs for the broken servers a
    download must survive: ``cut_once`` (path -> bytes sent before the
    first response is cut short), ``ignore_range`` (answer 200 with the
    whole file to a Range request), ``refuse_range`` (answer 416).
    ``requests`` records (method, path, Range header) of every request.
    """

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.files: dict[str, bytes] = {}
        self.cut_once: dict[str, int] = {}
        self.ignore_range: set[str] = set()
        self.refuse_range: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._answer(body=False)

            def do_GET(self):
                self._answer(body=True)

            def _answer(self, body: bool):
                rng = self.headers.get("Range")
                with server.lock:
                    server.requests.append((self.command, self.path, rng))
                    cut = server.cut_once.pop(self.path, None) if body else None
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if rng and self.path in server.refuse_range:
                    self.send_error(416)
                    return
                if rng and self.path not in server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                payload = data[start:]
                if cut is not None:
                    payload = payload[:cut]
                    self.close_connection = True
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def gets(self, path: str) -> list[str | None]:
        """The Range headers of the GETs of ``path``, in order."""
        return [rng for method, p, rng in self.requests if method == "GET" and p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server():
    server = FileServer()
    yield server
    server.close()
