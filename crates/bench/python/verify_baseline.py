"""Baselines for scripts/bench-verify: OpenCV template matching and Pillow JPEG encoding.

Usage: python verify_baseline.py WORK_DIR RUNS MATCHES_JSON
Reads photo.png and the grey frames and templates listed in MATCHES_JSON (each
{"frame", "template", "region": [x, y, w, h] or null}) from WORK_DIR (written by verify-bench),
writes pillow_q80.jpg there, and prints one JSON object with the measurements (medians over RUNS).
Single-threaded (cv2.setNumThreads(1)) so that it compares like with like.
"""

import io
import json
import os
import statistics
import sys
import time

import cv2
import PIL
from PIL import Image, features


def median_ms(fn, runs):
    fn()  # warm-up
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(samples)


def match(work, job, runs):
    """Like labwright's find_template: the score map of the region and its best position."""
    frame = cv2.imread(os.path.join(work, job["frame"]), cv2.IMREAD_GRAYSCALE)
    template = cv2.imread(os.path.join(work, job["template"]), cv2.IMREAD_GRAYSCALE)
    x0, y0 = 0, 0
    if job["region"] is not None:
        x0, y0, w, h = job["region"]
        frame = frame[y0 : y0 + h, x0 : x0 + w]

    def find():
        return cv2.minMaxLoc(cv2.matchTemplate(frame, template, cv2.TM_CCOEFF_NORMED))

    _, best, _, loc = find()
    return {"x": loc[0] + x0, "y": loc[1] + y0, "score": best, "ms": median_ms(find, runs)}


def main():
    work, runs, listing = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    cv2.setNumThreads(1)
    result = {"opencv_version": cv2.__version__, "opencv_threads": cv2.getNumThreads()}
    with open(listing) as f:
        jobs = json.load(f)
    result["matches"] = [match(work, job, runs) for job in jobs]

    photo = Image.open(os.path.join(work, "photo.png")).convert("RGB")
    photo.load()

    def encode():
        buf = io.BytesIO()
        photo.save(buf, "JPEG", quality=80)
        return buf

    data = encode().getvalue()
    with open(os.path.join(work, "pillow_q80.jpg"), "wb") as f:
        f.write(data)
    result["pillow_version"] = PIL.__version__
    result["libjpeg_turbo_version"] = features.version("libjpeg_turbo")
    result["pillow_q80_bytes"] = len(data)
    result["pillow_encode_ms"] = median_ms(encode, runs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
