"""Pictures: what resizing costs once, what the cache saves, and the message stage with
three embedded pictures against the per-recipient ``EmailMessage`` baseline.

* ``resize_first_s``: a 4,000 × 3,000 phone-sized photo (about 4 MB, EXIF with an
  orientation and a GPS position) prepared from nothing: decoded, turned upright,
  resized to 1,200 px, re-encoded without metadata;
* ``resize_cached_s``: the same picture asked for again by a new ``Pictures``
  (the on-disk cache, as a rebuild in a new process sees it);
* ``ours_per_s`` / ``naive_per_s``: personal messages per second for an issue
  variant holding three embedded pictures (about 150 KB after resizing), ours
  (the bytes template, picture parts encoded once per variant) against an
  ``EmailMessage`` built per person with the same pictures attached as related
  parts (``add_related``), medians of interleaved rounds with their spread.

Run by hand from the repository:

    .venv/bin/python benchmarks/bench_pictures.py [--messages 20000] [--naive 300] [--rounds 5]

Every result is a ``key=value`` line; ratios are against the baseline measured
in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import email.policy
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_message import recipients, synthetic_variant  # noqa: E402
from PIL import Image, ImageFilter  # noqa: E402
from PIL.ExifTags import IFD  # noqa: E402

from sender.config import Config  # noqa: E402
from sender.message import MessageTemplate  # noqa: E402
from sender.pictures import Pictures  # noqa: E402
from sender.placeholders import fill, split  # noqa: E402


def phone_photo(path: Path, width: int = 4000, height: int = 3000, *, grain: int = 4) -> None:
    """A photo-like JPEG with EXIF and GPS: noise enlarged ``grain`` times and blurred
    (``grain`` 4 gives the detail, and the 4-5 MB, of a phone photo; larger, smoother)."""
    small = (width // grain, height // grain)
    noise = Image.frombytes("RGB", small, os.urandom(small[0] * small[1] * 3))
    photo = noise.resize((width, height), Image.Resampling.BICUBIC).filter(
        ImageFilter.GaussianBlur(grain / 2)
    )
    exif = Image.Exif()
    exif[0x0112] = 6
    exif.get_ifd(IFD.GPSInfo).update({1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)})
    photo.save(path, "JPEG", quality=95, exif=exif)


def timed(work: object) -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--naive", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        phone = folder / "phone.jpg"
        phone_photo(phone)
        print(f"phone_photo_bytes={phone.stat().st_size}")
        first, again = Pictures(folder / "cache"), Pictures(folder / "cache")
        start = time.perf_counter()
        photo = first.get(phone, "phone.jpg")
        print(f"resize_first_s={time.perf_counter() - start:.3f}")
        print(f"phone_prepared_bytes={len(photo.data)} ({photo.width}x{photo.height})")
        start = time.perf_counter()
        again.get(phone, "phone.jpg")
        print(f"resize_cached_s={time.perf_counter() - start:.4f}")

        # Three pictures of about 50 KB each once prepared, for the message stage.
        prepared = []
        for n, size in enumerate(((4000, 3000), (3000, 4000), (4000, 3000))):
            path = folder / f"photo{n}.jpg"
            phone_photo(path, *size, grain=400)
            prepared.append(first.get(path, path.name))
        total = sum(len(p.data) for p in prepared)
        print(f"pictures_bytes={total}")

        config = Config(root=REPO)
        base = synthetic_variant()
        images = "".join(
            f'<img src="cid:{p.cid(config.domain)}" alt="photo {n}" width="536">'
            for n, p in enumerate(prepared)
        )
        variant = dataclasses.replace(
            base,
            html=base.html.replace("</body>", images + "</body>"),
            pictures=tuple(prepared),
            embedded=True,
        )
        date = datetime(2025, 2, 13, tzinfo=UTC)
        template = MessageTemplate(variant, config, date=date)
        people = list(recipients(max(args.messages, args.naive)))
        size = len(template.render(people[0]))
        print(f"message_bytes={size}")

        def ours() -> None:
            for r in people[: args.messages]:
                template.render(r)

        def naive() -> None:
            for r in people[: args.naive]:
                msg = EmailMessage()
                msg["Date"] = format_datetime(date)
                msg["From"] = config.sender
                msg["To"] = formataddr((r.name, r.email))
                msg["Subject"] = fill(split(variant.subject, "text"), r.fields)
                msg.set_content(fill(split(variant.text, "text"), r.fields))
                msg.add_alternative(fill(split(variant.html, "html"), r.fields), subtype="html")
                html = msg.get_body(("html",))
                assert html is not None
                for p in prepared:
                    main_type, sub_type = p.mime.split("/")
                    html.add_related(p.data, main_type, sub_type, cid=f"<{p.cid(config.domain)}>")
                msg.as_bytes(policy=email.policy.SMTP)

        ours_rates, naive_rates = [], []
        for _ in range(args.rounds):  # interleaved, so both see the same machine
            ours_rates.append(args.messages / timed(ours))
            naive_rates.append(args.naive / timed(naive))
        o, b = statistics.median(ours_rates), statistics.median(naive_rates)
        print(f"ours_per_s={o:.0f} (min {min(ours_rates):.0f}, max {max(ours_rates):.0f})")
        print(f"naive_per_s={b:.1f} (min {min(naive_rates):.1f}, max {max(naive_rates):.1f})")
        print(f"ratio={o / b:.1f}")


if __name__ == "__main__":
    main()
