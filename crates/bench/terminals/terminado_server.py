"""Baseline for scripts/bench-terminal: Python terminado (the Jupyter terminal backend) serving
`docker exec -it <container> sh`, one process per WebSocket, as its documentation shows."""
import sys

import tornado.ioloop
import tornado.web
from terminado import TermSocket, UniqueTermManager


def main():
    container, port = sys.argv[1], int(sys.argv[2])
    manager = UniqueTermManager(shell_command=["docker", "exec", "-it", container, "sh"])
    app = tornado.web.Application([(r"/websocket", TermSocket, {"term_manager": manager})])
    app.listen(port, "127.0.0.1")
    print("terminado listening", flush=True)
    tornado.ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
