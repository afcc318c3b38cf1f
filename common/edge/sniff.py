"""Is it audio? Decide from the first bytes of the content, never from the name alone.

``sniff(head)`` recognises the containers faster-whisper's decoder (FFmpeg through PyAV)
reads: WAV/RF64/Wave64, FLAC, Ogg (Opus, Vorbis, Speex, FLAC), MP3 (ID3 or a valid frame
pair), AAC (ADTS), MP4/M4A/3GP/MOV, Matroska/WebM, AIFF, CAF, AMR, ASF/WMA, AU. A few common
non-audio formats are named so that a rejection can say what the upload looks like instead.
"""

from __future__ import annotations

from dataclasses import dataclass

HEAD_BYTES = 64 * 1024  # enough for an ID3 tag with a small cover picture and the next frame


@dataclass(frozen=True)
class Sniffed:
    is_audio: bool
    kind: str  # "wav", "mp3", ... or, for non-audio, what it looks like ("pdf", "text")

    @property
    def description(self) -> str:
        return _DESCRIPTIONS.get(self.kind, self.kind)


_DESCRIPTIONS = {
    "pdf": "a PDF document",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "gif": "a GIF image",
    "zip": "a ZIP archive (or an Office document)",
    "gzip": "a gzip archive",
    "elf": "an executable",
    "html": "an HTML page",
    "json": "JSON text",
    "text": "plain text",
    "unknown": "not a recognised audio format",
    "empty": "empty",
}

_MP4_BRANDS = (
    b"M4A ",
    b"M4B ",
    b"M4P ",
    b"mp41",
    b"mp42",
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
    b"qt  ",
    b"MSNV",
    b"dash",
    b"avc1",
    b"f4a ",
    b"f4v ",
    b"mmp4",
)


def sniff(head: bytes) -> Sniffed:
    """Classify content by its first bytes (pass at least ``HEAD_BYTES`` when available)."""
    if not head:
        return Sniffed(False, "empty")
    kind = _audio_kind(head)
    if kind is not None:
        return Sniffed(True, kind)
    return Sniffed(False, _other_kind(head))


def _audio_kind(h: bytes) -> str | None:
    if h[:4] in (b"RIFF", b"RF64", b"BW64") and h[8:12] == b"WAVE":
        return "wav"
    if h[:4] == b"riff" and h[24:28] == b"wave":  # Sony Wave64 (GUID-based)
        return "wav"
    if h[:4] == b"fLaC":
        return "flac"
    if h[:4] == b"OggS":
        return "ogg"
    if h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if h[:4] == b"caff":
        return "caf"
    if h[:6] == b"#!AMR\n" or h[:9] == b"#!AMR-WB\n":
        return "amr"
    if h[:4] == b".snd":
        return "au"
    if h[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in h[:64] else "matroska"
    if h[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "asf"
    if h[4:8] == b"ftyp" and h[8:12] in _MP4_BRANDS:
        return "mp4"
    if h[:3] == b"ID3":
        return "mp3"
    if _adts_at(h, 0):
        return "aac"
    if _mpeg_frames_at(h, 0):
        return "mp3"
    return None


# MPEG-1/2/2.5 audio frame headers --------------------------------------------------------------
_BITRATES = {  # kbit/s by (version is MPEG-1, layer) and index 1..14
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame_length(h: bytes, at: int) -> int | None:
    if at + 4 > len(h) or h[at] != 0xFF or (h[at + 1] & 0xE0) != 0xE0:
        return None
    version = (h[at + 1] >> 3) & 0x3  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5, 1 reserved
    layer_bits = (h[at + 1] >> 1) & 0x3  # 3 = layer I, 2 = II, 1 = III, 0 reserved
    bitrate_index = h[at + 2] >> 4
    rate_index = (h[at + 2] >> 2) & 0x3
    if version == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][bitrate_index - 1] * 1000
    rate = _RATES[version][rate_index]
    padding = (h[at + 2] >> 1) & 0x1
    if layer == 1:
        return (12 * bitrate // rate + padding) * 4
    per_frame = 144 if (layer == 2 or mpeg1) else 72
    return per_frame * bitrate // rate + padding


def _mpeg_frames_at(h: bytes, at: int) -> bool:
    """A valid frame header followed by another one where the first frame ends."""
    length = _mpeg_frame_length(h, at)
    if not length:
        return False
    following = at + length
    if following + 4 > len(h):
        return len(h) - at < 2 * length and following >= len(h)  # a lone, whole short file
    return _mpeg_frame_length(h, following) is not None


def _adts_at(h: bytes, at: int) -> bool:
    if at + 7 > len(h) or h[at] != 0xFF or (h[at + 1] & 0xF6) != 0xF0:
        return False
    rate_index = (h[at + 2] >> 2) & 0xF
    length = ((h[at + 3] & 0x3) << 11) | (h[at + 4] << 3) | (h[at + 5] >> 5)
    if rate_index > 12 or length < 7:
        return False
    following = at + length
    if following + 2 > len(h):
        return True
    return h[following] == 0xFF and (h[following + 1] & 0xF6) == 0xF0


def _other_kind(h: bytes) -> str:
    if h[:5] == b"%PDF-":
        return "pdf"
    if h[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if h[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if h[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if h[:4] == b"PK\x03\x04":
        return "zip"
    if h[:2] == b"\x1f\x8b":
        return "gzip"
    if h[:4] == b"\x7fELF":
        return "elf"
    decoded = _utf8(h[:4096])
    if decoded is None or any(c in decoded for c in "\x00\x01\x02\x03\x04\x05\x06\x07"):
        return "unknown"
    stripped = decoded.lstrip().lower()
    if stripped.startswith(("<!doctype html", "<html")):
        return "html"
    if stripped.startswith(("{", "[")):
        return "json"
    return "text"


def _utf8(data: bytes) -> str | None:
    """UTF-8 text, allowing the cut to split the last character."""
    for cut in range(4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None
