"""A tiny web app for trying Labwright's repo sandboxes: `labwright build <url> --follow`."""
from http.server import BaseHTTPRequestHandler, HTTPServer


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from a Labwright sandbox\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    print("serving on :8000", flush=True)
    HTTPServer(("0.0.0.0", 8000), Hello).serve_forever()
