"""Local pictures: found in the issue, checked, made light, and cached by content.

A picture written as a file (``image: {src: images/fair.jpg}``, a Markdown
``![alt](images/fair.jpg)`` in a body, the ``[newsletter] logo``) is sent
resized to at most twice the column's width, turned upright from its EXIF
orientation, and re-encoded without any metadata: phones put the GPS position
in it, and a photo of a school must not publish where it was taken. The
original file is never changed. Prepared copies are cached by the hash of the
original, so a rebuild does not resize again.

How the email reaches a picture is ``[images] mode``: ``embed`` puts it in the
message (``cid:``, RFC 2392), ``hosted`` links it where the archive publishes
it, and the archive's own pages link their local copies.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .issue import MARKDOWN_PICTURE, Issue, picture_problem

COLUMN = 536  # the widest a picture is shown in the templates' column, in CSS pixels
MAX_WIDTH = 1200  # twice the 600 px column: sharp on high-density screens, no wider
JPEG_QUALITY = 82
WARN_BYTES = 1024 * 1024  # pictures per email: slow to open on a phone
MAX_BYTES = 10 * 1024 * 1024  # too big for many mail servers
_VERSION = "1"  # part of the cache key: bump when the preparation changes
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class PictureError(Exception):
    """A picture that cannot be used; the message says why, in the user's words."""


@dataclass(frozen=True)
class Picture:
    """A local picture as it is sent and published."""

    src: str  # as written, relative to the issue's folder (the logo: to newsletter.toml's)
    data: bytes  # resized, upright, without metadata
    mime: str  # image/jpeg, image/png or image/gif
    width: int  # of ``data``, in pixels
    height: int
    original_bytes: int  # the size of the file as it was written

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]

    def cid(self, domain: str) -> str:
        """Its Content-ID (without <>): the same picture has the same one everywhere."""
        return f"pic-{self.digest}@{domain}"

    @property
    def filename(self) -> str:
        """A plain ASCII file name for the mail part, whatever the file was called."""
        stem = _NOT_NAME.sub("-", PurePosixPath(self.src).stem).strip("-.") or "picture"
        return f"{stem[:60]}.{self.mime.split('/')[1].replace('jpeg', 'jpg')}"

    @property
    def shown(self) -> tuple[int, int]:
        """Width and height it is shown at: the column's width at most."""
        width = min(COLUMN, self.width)
        return width, max(1, round(self.height * width / self.width))


def is_local(src: str) -> bool:
    return "://" not in src and not src.startswith(("data:", "cid:", "mailto:", "//"))


@dataclass(frozen=True)
class Use:
    """Where an issue uses a picture: its position key (for file:line) and section."""

    src: str
    alt: str
    key: str  # its place in issue.positions: "sections[2].image.src", "intro!images/a.png"
    section: int | None  # None: every version shows it


def uses(issue: Issue, logo: str | None = None) -> Iterator[Use]:
    """Every picture the issue shows, in order: the logo, intro, sections, sign-off."""
    if logo:
        yield Use(logo, "", "logo", None)
    yield from _markdown_uses(issue.intro, "intro", None)
    for n, section in enumerate(issue.sections):
        if section.image:
            yield Use(section.image.src, section.image.alt, f"sections[{n}].image.src", n)
        yield from _markdown_uses(section.body, f"sections[{n}].body", n)
    yield from _markdown_uses(issue.sign_off, "sign_off", None)


def _markdown_uses(text: str | None, key: str, section: int | None) -> Iterator[Use]:
    for match in MARKDOWN_PICTURE.finditer(text or ""):
        yield Use(match[2], match[1], f"{key}!{match[2]}", section)


class Pictures:
    """The local pictures of one workspace, prepared once and cached on disk by content."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self._memory: dict[tuple[Path, int, int], Picture] = {}

    def get(self, path: Path, src: str) -> Picture:
        """The prepared picture of the file at ``path``; raises PictureError."""
        try:
            st = path.stat()
        except FileNotFoundError:
            raise PictureError(f"there is no picture file {src}") from None
        except OSError as exc:
            raise PictureError(f"the picture {src} cannot be read: {exc.strerror}") from None
        known = self._memory.get((path, st.st_size, st.st_mtime_ns))
        if known is not None:
            return known
        try:
            original = path.read_bytes()
        except OSError as exc:
            raise PictureError(f"the picture {src} cannot be read: {exc.strerror}") from None
        problem = picture_problem(original[:512])
        if problem:
            raise PictureError(f"the picture {src} is {problem}")
        key = hashlib.sha256(original + _VERSION.encode()).hexdigest()
        picture = self._cached(key, src, len(original)) or self._prepare(key, src, original)
        self._memory[(path, st.st_size, st.st_mtime_ns)] = picture
        return picture

    def _cached(self, key: str, src: str, size: int) -> Picture | None:
        for ending, mime in _ENDINGS.items():
            file = self.cache / f"{key}.{ending}"
            if file.is_file():
                data = file.read_bytes()
                width, height = _size(data)
                return Picture(src, data, mime, width, height, size)
        return None

    def _prepare(self, key: str, src: str, original: bytes) -> Picture:
        data, mime, (width, height) = prepare(original, src)
        ending = next(e for e, m in _ENDINGS.items() if m == mime)
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            tmp = self.cache / f".{key}.{ending}.tmp"
            tmp.write_bytes(data)
            tmp.replace(self.cache / f"{key}.{ending}")
        except OSError:
            pass  # no cache this time: the picture is prepared again next build
        return Picture(src, data, mime, width, height, len(original))


_ENDINGS = {"jpg": "image/jpeg", "png": "image/png", "gif": "image/gif"}


def prepare(original: bytes, src: str = "the picture") -> tuple[bytes, str, tuple[int, int]]:
    """Resize to MAX_WIDTH at most, apply the EXIF orientation, drop all metadata.

    Photos become JPEG; pictures with transparency, drawings (PNG) and still
    GIFs become PNG; an animated GIF is kept as it is (resizing would lose
    the animation), and WebP becomes JPEG or PNG, which Outlook can show.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(original))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PictureError(f"{src} cannot be opened as a picture: {exc}") from None
    kind = image.format
    if kind == "GIF" and getattr(image, "is_animated", False):
        return original, "image/gif", image.size
    upright = ImageOps.exif_transpose(image) or image
    if upright.width > MAX_WIDTH:
        height = max(1, round(upright.height * MAX_WIDTH / upright.width))
        upright = upright.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
    transparent = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    out = io.BytesIO()
    if kind in ("PNG", "GIF") or transparent:
        if upright.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            upright = upright.convert("RGBA" if transparent else "RGB")
        # No pnginfo: text chunks and eXIf are left behind.
        upright.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png", upright.size
    if upright.mode != "RGB":
        upright = upright.convert("RGB")
    # No exif= argument: the EXIF block, GPS included, is not written.
    upright.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue(), "image/jpeg", upright.size


def _size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def published(issue: Issue, relative: str) -> str:
    """Where the archive publishes a file of the issue, relative to its root (and web_url)."""
    return f"{issue.date.year}/{issue.slug}/{relative}"
