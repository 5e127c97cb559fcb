"""Video clips made in the test: the example photos moving, with a tone, and broken variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def write_clip(path, seconds=2.0, fps=30, size=(640, 480), audio=True, video=True, pts_step=None, face=True,
               audio_seconds=None, audio_rate=44100, silent=False, live=False, astronaut_px=None):
    """An H.264 clip of the astronaut sliding across a grey room (or the room alone), with a 440 Hz tone.

    pts_step: a list of frame-to-frame steps in 1/fps units to make a variable frame rate.
    audio_seconds: the sound's length when it differs from the pictures'.
    silent: silence instead of the tone, which AAC encodes about 50 times faster (long sound tracks).
    live: a Matroska/WebM file written as a stream, with no length in its header (as browsers record).
    astronaut_px: the photo's side in pixels (default: nearly the frame's height).
    """
    import av

    w, h = size
    astronaut = Image.open(EXAMPLES / "astronaut.jpg").resize((astronaut_px or min(420, h - 20),) * 2)
    n = int(round(seconds * fps))
    with av.open(str(path), "w", options={"live": "1"} if live else {}) as container:
        if video:  # every stream is added before the first packet is written
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "ultrafast"}
        if audio:
            tone = container.add_stream("aac", rate=audio_rate)
        if video:
            pts = 0
            for i in range(n):
                frame = Image.new("RGB", size, (60, 60, 70))
                if face:
                    frame.paste(astronaut, (int(10 + (w - astronaut.width - 20) * i / max(n - 1, 1)), 10))
                out = av.VideoFrame.from_ndarray(np.asarray(frame), format="rgb24")
                out.pts = pts
                pts += pts_step[i % len(pts_step)] if pts_step else 1  # in 1/fps
                for packet in stream.encode(out):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        if audio:
            t = np.arange(int((seconds if audio_seconds is None else audio_seconds) * audio_rate)) / audio_rate
            samples = (0.2 * np.sin(2 * np.pi * 440 * t) * (not silent)).astype(np.float32)
            for k in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, k:k + 1024], format="flt", layout="mono")
                frame.sample_rate = audio_rate
                for packet in tone.encode(frame):
                    container.mux(packet)
            for packet in tone.encode(None):
                container.mux(packet)
    return Path(path)


def frames_and_seconds(path) -> tuple[int, float, list[str]]:
    """Decoded frame count, video duration from the stream, and the stream kinds."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        seconds = float(stream.duration * stream.time_base) if stream.duration else container.duration / 1e6
        kinds = [s.type for s in container.streams]
        frames = sum(1 for _ in container.decode(video=0))
    return frames, seconds, kinds


def write_size_switch(path, small=(64, 48), large=(8200, 8200), frames=(30, 2)):
    """An MKV whose header says `small` frames, but whose H.264 stream switches to `large` ones
    partway (a second parameter set): two raw H.264 clips end to end, remuxed without decoding."""
    from fractions import Fraction

    import av

    raw = Path(path).with_suffix(".h264")
    with open(raw, "wb") as out:
        for size, n in zip((small, large), frames):
            part = write_clip(raw.with_suffix(f".{size[0]}.h264"), seconds=n / 30, size=size, audio=False, face=False)
            out.write(part.read_bytes())
            part.unlink()
    with av.open(str(raw), format="h264") as source, av.open(str(path), "w") as sink:
        stream = sink.add_stream_from_template(source.streams.video[0])
        for i, packet in enumerate(p for p in source.demux(video=0) if p.size):
            packet.stream, packet.time_base = stream, Fraction(1, 1000)
            packet.pts = packet.dts = i * 33
            sink.mux(packet)
    raw.unlink()
    return Path(path)
