"""Audio for the model: 16 kHz mono float32 samples, 80-bin log-mel at 80 frames/s, and the mel window
of each video frame, centred on that frame's own time (any fps).

Log-mel mapping (exact): mel = librosa magnitude mel spectrogram (power 1, Slaney mel scale and norm,
n_fft 800, hop 200, window 800 Hann, 55-7600 Hz, centred frames with zero padding);
value = clip((log10(max(mel, 1e-5)) + 5) * 1.6 - 4, -4, 4). So a silent frame (mel <= 1e-5) is
exactly -4 (`MEL_SILENCE`) and a level of 1 reaches +4; speech at ordinary recording levels fills
the range without clipping.
"""

from __future__ import annotations

from pathlib import Path

import av
import librosa
import numpy as np

from ..errors import MediaError
from .inputs import require_file

SAMPLE_RATE = 16000
MEL_FPS = 80
N_MELS = 80
HOP = SAMPLE_RATE // MEL_FPS  # 200 samples
N_FFT = 800
FMIN, FMAX = 55.0, 7600.0
MEL_FLOOR = 1e-5
MEL_SCALE = 1.6  # 5 decades (1e-5 .. 1) map onto the 8 units of [-4, 4]
MEL_SILENCE = -4.0
# Gaps and overhangs shorter than this are rounding between containers, not worth a message.
REPORT_THRESHOLD_S = 0.001


def load_audio(path: str | Path, offset_s: float = 0.0) -> np.ndarray:
    """16 kHz mono float32 of the file's first audio stream (an audio file or a video's own track).

    Sample 0 is the instant `offset_s` on the file's timeline: the stream's own start offset is
    honoured (audio that starts late is preceded by silence; audio before `offset_s` is dropped).
    To line up with a video plate's frames, pass `offset_s=plate.info.start_time`.
    Channels are averaged.
    """
    samples, _ = decode_audio(path, offset_s, rate=SAMPLE_RATE)
    return samples.mean(axis=0, dtype=np.float32)


def decode_audio(path: str | Path, offset_s: float = 0.0, rate: int | None = None) -> tuple[np.ndarray, int]:
    """(channels, n) float32 samples of the file's first audio stream and their rate (the stream's own
    unless `rate` is given), sample 0 at `offset_s` on the file's timeline (see `load_audio`)."""
    path = Path(path)
    require_file(path)
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise MediaError(f"{path}: cannot be read as audio ({error})") from error
    with container:
        if not container.streams.audio:
            raise MediaError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", rate=rate)
        chunks, start = [], None
        try:
            for frame in container.decode(stream):
                if start is None:
                    # The first decoded sample's time: encoder priming and late starts are in it.
                    start = float(frame.time) if frame.time is not None else 0.0
                chunks += [f.to_ndarray() for f in resampler.resample(frame)]
            chunks += [f.to_ndarray() for f in resampler.resample(None)]
        except av.FFmpegError as error:
            raise MediaError(f"{path}: audio data is damaged ({error})") from error
        rate = rate or stream.codec_context.sample_rate
    if start is None or not chunks:
        raise MediaError(f"{path}: audio stream holds no samples")
    samples = np.concatenate(chunks, axis=1).astype(np.float32)
    if not np.isfinite(samples).all():
        # A float file can hold NaN or infinity: the mel, the model and the encoder would all turn it into noise.
        bad = np.flatnonzero(~np.isfinite(samples).all(axis=0))
        raise MediaError(
            f"{path}: the audio holds {len(bad)} samples that are not numbers (NaN or infinity), the first at "
            f"{bad[0] / rate:.3f} s: the file is damaged; export it again"
        )
    shift = int(round((start - offset_s) * rate))
    if shift > 0:
        return np.pad(samples, ((0, 0), (shift, 0))), rate
    return samples[:, -shift:], rate


def fit_full_scale(samples: np.ndarray, path: str | Path, how: str) -> tuple[np.ndarray, str | None]:
    """Samples above full scale (|x| > 1, possible in a float file) made playable, and a note saying so (None
    when they fit). how: 'normalise' scales the whole dub down to peak at full scale (its sound is kept);
    'clip' cuts the peaks off (its level is kept, the peaks distort)."""
    if how not in ("normalise", "clip"):
        raise MediaError(f"audio peaks {how!r}: use 'normalise' or 'clip'")
    peak = float(np.abs(samples).max(initial=0.0))
    if peak <= 1.0:
        return samples, None
    over = f"{path}: the audio peaks at {peak:.4g}, {20 * np.log10(peak):.1f} dB above full scale"
    if how == "normalise":
        return (samples / np.float32(peak)).astype(np.float32), f"{over}: scaled down to fit (--audio-peaks clip keeps its level)"
    clipped = int(np.count_nonzero(np.abs(samples) > 1.0))
    return np.clip(samples, -1.0, 1.0), f"{over}: {clipped} samples clipped (--audio-peaks normalise scales it instead)"


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(n, 80) float32 normalised log-mel (see module doc); frame k is centred at k/80 s."""
    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32), sr=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT,
        n_mels=N_MELS, fmin=FMIN, fmax=FMAX, power=1.0, center=True, pad_mode="constant",
    )
    log = np.log10(np.maximum(mel, MEL_FLOOR))
    return np.clip((log + 5.0) * MEL_SCALE - 4.0, -4.0, 4.0).T.astype(np.float32)


def mel_windows(mel: np.ndarray, times: np.ndarray, width: int = 16) -> np.ndarray:
    """(T, width, 80): for each time t (seconds, e.g. each video frame's `Frame.time`), the `width`
    mel frames whose centres are nearest t (their mean centre lies within half a mel frame of t).
    Frames before the start or after the end of the audio are silence."""
    times = np.asarray(times, dtype=np.float64)
    starts = np.floor(times * MEL_FPS - (width - 1) / 2 + 0.5).astype(np.int64)
    # Pad by enough silence on both sides that every window lies inside the padded array.
    before = int(max(0, -starts.min())) if len(starts) else 0
    after = int(max(0, starts.max() + width - len(mel))) if len(starts) else 0
    padded = np.pad(mel, ((before, after), (0, 0)), constant_values=MEL_SILENCE)
    index = starts[:, None] + before + np.arange(width)[None, :]
    return padded[index].astype(np.float32)


def audio_for_range(audio: np.ndarray, start_s: float, duration_s: float) -> tuple[np.ndarray, str | None]:
    """The samples from `start_s` for `duration_s` (both seconds at 16 kHz), padded with silence where
    the audio does not reach, and a message saying what was padded or trimmed (None when nothing was)."""
    start = int(round(start_s * SAMPLE_RATE))
    count = int(round(duration_s * SAMPLE_RATE))
    lead = min(count, max(0, -start))  # the range starts before the audio does
    piece = audio[max(0, start) : max(0, start + count)]
    tail = count - lead - len(piece)
    result = np.concatenate([np.zeros(lead, np.float32), piece, np.zeros(max(0, tail), np.float32)])
    messages = []
    if lead / SAMPLE_RATE >= REPORT_THRESHOLD_S:
        messages.append(f"audio starts {_seconds(lead)} after the range: padded with silence")
    if tail / SAMPLE_RATE >= REPORT_THRESHOLD_S:
        messages.append(f"audio is {_seconds(tail)} shorter than the range: padded with silence")
    overhang = len(audio) - (start + count)
    if overhang / SAMPLE_RATE >= REPORT_THRESHOLD_S:
        messages.append(f"audio is {_seconds(overhang)} longer than the range: trimmed")
    return result.astype(np.float32), "; ".join(messages) or None


def _seconds(samples: int) -> str:
    return f"{samples / SAMPLE_RATE:.3g} s"
