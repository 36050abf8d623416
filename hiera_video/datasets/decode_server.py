"""Entry point of the decode watchdog's helper process: ``python -m hiera_video.datasets.decode_server``.

Speaks the request protocol of :class:`hiera_video.datasets.decoding.DecodeServer` on stdin / stdout.
"""
from hiera_video.datasets.decoding import serve_stdio

if __name__ == "__main__":
    serve_stdio()
