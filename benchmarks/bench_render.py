"""How long building one variant takes, whole and by stage, against npm mjml.

Builds every variant of every shipped issue (each list alone, and everyone)
with the library's Renderer, as ``newsletter build`` does, and reports the
median milliseconds per variant: render (Jinja stage 1 + Markdown), MJML
compile, CSS inlining and the text part. Target: under 10 ms per variant.

Then each stage alone, on the exact inputs the Renderer gave it (captured by
wrapping jinja2's Template.render, mjml.mjml2html and the inliner in this
script only): Jinja stage 1, mjml-python, css-inline, premailer (if
installed), the text part, and the issue-level Markdown shared by variants.

Where node and npm exist, the npm ``mjml`` package (v4, installed on first run
into ~/.cache/newsletter-bench, outside the repository) compiles the same
captured MJML: once through its CLI (a new node process per file, as a shell
script would use it) and through its Node API in one long-running process.
The ratios against mjml-python and against our whole per-variant pipeline are
measured in the same run, on the same machine and inputs.

Run by hand from the repository:

    .venv/bin/python benchmarks/bench_render.py [--repeat 30] [--no-node]

Every result is a ``key=value`` line, so runs are easy to compare or grep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import jinja2  # noqa: E402
import mjml  # noqa: E402

from sender import inline, markup  # noqa: E402
from sender.issue import Issue  # noqa: E402
from sender.placeholders import Tokens, find  # noqa: E402
from sender.render import _INLINE_STYLE, Renderer, audience_sets  # noqa: E402
from sender.workspace import Workspace  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "newsletter-bench"
NPM_MJML = "mjml@4"

# One long-running node process: compile each file `reps` times after a
# warm-up, with mjml's default (soft) validation and with validation skipped.
NODE_API_JS = r"""
const fs = require('fs');
const mjml2html = require('mjml');
const [reps, ...files] = process.argv.slice(2);
const sources = files.map((f) => fs.readFileSync(f, 'utf8'));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const out = {};
for (const level of ['soft', 'skip']) {
  const opts = { validationLevel: level, keepComments: true };
  for (let i = 0; i < 3; i++) for (const s of sources) mjml2html(s, opts);  // warm-up (JIT)
  const perFile = sources.map((s) => {
    const times = [];
    for (let i = 0; i < Number(reps); i++) {
      const t = process.hrtime.bigint();
      const r = mjml2html(s, opts);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (!r.html) throw new Error('no html');
    }
    return median(times);
  });
  out[level] = perFile;
}
process.stdout.write(JSON.stringify(out));
"""


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


def times(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> list[float]:
    """Wall times of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def median_time(fn: Callable[[], Any], repeat: int, warmup: int = 2) -> float:
    return statistics.median(times(fn, repeat, warmup))


@dataclass
class Captured:
    """What the Renderer handed each stage, per variant, in call order."""

    jinja_html: list[tuple[jinja2.Template, tuple[Any, ...], dict[str, Any], str]] = field(
        default_factory=list
    )
    jinja_text: list[tuple[jinja2.Template, tuple[Any, ...], dict[str, Any], str]] = field(
        default_factory=list
    )
    mjml: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    inliner: list[tuple[str, str]] = field(default_factory=list)
    inlined: list[str] = field(default_factory=list)
    tokens: list[Tokens] = field(default_factory=list)  # per variant: its issue's tokens


def capture(renderer: Renderer, issues: list[Issue], sets: list[frozenset[str]]) -> Captured:
    """Build every variant once with the stages wrapped to record their inputs."""
    got = Captured()
    real_render = jinja2.Template.render
    real_mjml = mjml.mjml2html
    real_inline = renderer.inline

    def render(self: jinja2.Template, *args: Any, **kwargs: Any) -> str:
        out = real_render(self, *args, **kwargs)
        name = self.name or ""
        if name.endswith(".mjml.j2"):
            got.jinja_html.append((self, args, kwargs, out))
        elif name.endswith(".txt.j2"):
            got.jinja_text.append((self, args, kwargs, out))
        return out

    def mjml2html(source: str, **kwargs: Any) -> str:
        got.mjml.append((source, kwargs))
        return real_mjml(source, **kwargs)

    def inliner(html: str, css: str) -> str:
        got.inliner.append((html, css))
        got.inlined.append(real_inline(html, css))
        return got.inlined[-1]

    jinja2.Template.render = render  # type: ignore[method-assign]
    mjml.mjml2html = mjml2html
    renderer.inline = inliner
    try:
        for issue in issues:
            tokens = renderer._prepare(issue).tokens  # same tokens as variants() makes
            renderer.variants(issue, sets)
            got.tokens += [tokens] * len(sets)
    finally:
        jinja2.Template.render = real_render  # type: ignore[method-assign]
        mjml.mjml2html = real_mjml
        renderer.inline = real_inline
    return got


def per_variant(
    inputs: list[Any], fn: Callable[[Any], Any], repeat: int
) -> tuple[float, list[float]]:
    """Mean over variants of each variant's median time, and the per-variant medians."""
    each = [median_time(lambda x=x: fn(x), repeat) for x in inputs]
    return statistics.fmean(each), each


def npm_mjml_bin() -> Path | None:
    """The npm mjml CLI in the cache folder, installing it on first use."""
    if not (shutil.which("node") and shutil.which("npm")):
        print("npm_mjml=skipped (node or npm not found)")
        return None
    binary = CACHE / "node_modules" / ".bin" / "mjml"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"# installing {NPM_MJML} into {CACHE} (first run only)…", flush=True)
    try:
        proc = subprocess.run(
            ["npm", "install", "--prefix", str(CACHE), "--no-audit", "--no-fund", NPM_MJML],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"npm_mjml=skipped (npm install failed: {exc})")
        return None
    if proc.returncode != 0 or not binary.exists():
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"npm_mjml=skipped (npm install {NPM_MJML} failed, offline?: {last[0]})")
        return None
    return binary


def bench_npm(
    binary: Path, sources: list[str], python_each: list[float], pipeline: float, repeat: int
) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-mjml-") as tmp:
        folder = Path(tmp)
        files = []
        for i, source in enumerate(sources):
            f = folder / f"variant{i}.mjml"
            f.write_text(source, encoding="utf-8")
            files.append(f)
        node_version = subprocess.run(
            ["node", "--version"], capture_output=True, text=True
        ).stdout.strip()
        mjml_version = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True
        ).stdout.split()
        print(f"node_version={node_version}")
        print(f"npm_mjml_version={mjml_version[-1] if mjml_version else '?'}")

        # CLI: a node process per compile, as a Makefile or shell loop would run it.
        # It costs about a second each, so one file (the largest) a few times.
        largest = max(range(len(sources)), key=lambda i: len(sources[i]))
        cli_runs = 5
        out = folder / "out.html"

        def cli() -> None:
            subprocess.run(
                [str(binary), str(files[largest]), "-o", str(out)],
                check=True,
                capture_output=True,
            )

        try:
            cli_s = median_time(cli, cli_runs, warmup=1)
        except subprocess.CalledProcessError as exc:
            print(f"npm_mjml_cli=failed ({exc.stderr.decode(errors='replace').strip()[:200]})")
            cli_s = None
        py_same = python_each[largest]
        if cli_s is not None:
            print(f"npm_mjml_cli_file=variant{largest}.mjml ({len(sources[largest])} chars)")
            print(f"npm_mjml_cli_ms={ms(cli_s)}  # median of {cli_runs} runs, new process each")
            print(f"mjml_python_same_file_ms={ms(py_same)}")
            print(f"ratio_cli_vs_python={cli_s / py_same:.0f}x")
            print(f"ratio_cli_vs_pipeline={cli_s / pipeline:.0f}x  # CLI alone vs our variant")

        # API: one node process, JIT warmed up, the same inputs as mjml-python got.
        script = folder / "bench.js"
        script.write_text(NODE_API_JS, encoding="utf-8")
        env = {**os.environ, "NODE_PATH": str(CACHE / "node_modules")}
        proc = subprocess.run(
            ["node", str(script), str(max(5, repeat // 2)), *map(str, files)],
            capture_output=True,
            text=True,
            env=env,
        )
        if proc.returncode != 0:
            print(f"npm_mjml_api=failed ({proc.stderr.strip()[-300:]})")
            return
        result = json.loads(proc.stdout)
        py_mean = statistics.fmean(python_each) * 1000  # ms, as node reports
        for level, key in (("soft", "npm_mjml_api_ms"), ("skip", "npm_mjml_api_novalidate_ms")):
            api = statistics.fmean(result[level])
            note = "validation soft (default)" if level == "soft" else "validationLevel skip"
            print(f"{key}={api:.3f}  # mean of per-variant medians, {note}")
        api = statistics.fmean(result["soft"])
        print(f"ratio_api_vs_python={api / py_mean:.1f}x")
        print(f"ratio_api_vs_pipeline={api / (pipeline * 1000):.1f}x  # API alone vs our variant")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per measurement")
    parser.add_argument("--no-node", action="store_true", help="skip the npm mjml comparison")
    args = parser.parse_args()
    repeat = max(3, args.repeat)

    ws = Workspace.open(REPO)
    issues = [ws.load_issue(p) for p in sorted((REPO / "newsletters").glob("*.yaml"))]
    sets = audience_sets([], ws.lists)
    renderer = ws.renderer
    n_variants = len(issues) * len(sets)
    print(f"python={sys.version.split()[0]} cpus={os.cpu_count()} ")
    print(f"loadavg={' '.join(f'{x:.2f}' for x in os.getloadavg())}  # other work skews timings")
    print(f"issues={len(issues)} audience_sets={len(sets)} variants={n_variants}")
    print(f"inliner={ws.config.inliner}")

    # The whole pipeline, as `newsletter build` runs it: Markdown once per
    # issue, then per variant Jinja, MJML, inlining, the text part.
    def build_all() -> None:
        for issue in issues:
            renderer.variants(issue, sets)

    builds = times(build_all, repeat, warmup=3)
    pipeline = statistics.median(builds) / n_variants
    print(f"ms_per_variant={ms(pipeline)}  # median of {repeat} builds of all {n_variants}")
    print(f"ms_per_variant_best={ms(min(builds) / n_variants)}  # least disturbed by other load")
    print(f"target_10ms={'met' if pipeline < 0.010 else 'MISSED'}")

    # Each stage alone, on the Renderer's own inputs.
    got = capture(renderer, issues, sets)
    assert len(got.mjml) == len(got.jinja_html) == len(got.inliner) == n_variants, got

    def jinja(call: tuple[jinja2.Template, tuple[Any, ...], dict[str, Any], str]) -> str:
        template, a, kw, expected = call
        out = template.render(*a, **kw)
        assert out == expected
        return out

    # Issue-level work, done once and shared by the issue's variants: the
    # Markdown of intro, sections and sign-off, to HTML and to wrapped text.
    def share(seconds: list[float]) -> float:
        return sum(seconds) / n_variants

    prepare = share([median_time(lambda i=i: renderer._prepare(i), repeat) for i in issues])
    sources = [
        [t for t in (i.intro, i.sign_off, *(s.body for s in i.sections)) if t] for i in issues
    ]
    md_html = share(
        [median_time(lambda t=t: [markup.to_html(x) for x in t], repeat) for t in sources]
    )
    md_text = share(
        [median_time(lambda t=t: [markup.to_text(x) for x in t], repeat) for t in sources]
    )
    jinja_s, _ = per_variant(got.jinja_html, jinja, repeat)
    mjml_s, mjml_each = per_variant(got.mjml, lambda c: mjml.mjml2html(c[0], **c[1]), repeat)
    css_s, _ = per_variant(got.inliner, lambda c: inline.css_inline_engine(*c), repeat)
    text_s, _ = per_variant(got.jinja_text, jinja, repeat)
    print(f"issue_prepare_ms={ms(prepare)}  # once per issue, shown per variant; of which:")
    print(f"  markdown_to_html_ms={ms(md_html)}")
    print(f"  markdown_to_text_ms={ms(md_text)}  # wrapped at 76 for the text part")
    print(f"jinja_stage1_ms={ms(jinja_s)}")
    print(f"mjml_python_ms={ms(mjml_s)}")
    print(f"css_inline_ms={ms(css_s)}")
    print(f"text_part_ms={ms(text_s)}  # txt template (+ markdown_to_text above)")

    # The glue render.py runs around those stages: pull the inline CSS out of
    # the MJML, put placeholders back, list the placeholders used.
    def glue(i: int) -> None:
        source = got.jinja_html[i][3]
        "\n".join(_INLINE_STYLE.findall(source))
        _INLINE_STYLE.sub("", source)
        html = got.tokens[i].restore(got.inlined[i])
        text = got.tokens[i].restore(got.jinja_text[i][3])
        for part in (html, text):
            list(find(part))

    glue_s, _ = per_variant(list(range(n_variants)), glue, repeat)
    print(f"glue_ms={ms(glue_s)}  # inline-CSS split, placeholders restored and listed")
    stages = prepare + jinja_s + mjml_s + css_s + text_s + glue_s
    print(f"sum_of_stages_ms={ms(stages)}  # vs ms_per_variant={ms(pipeline)}")
    try:
        import premailer  # noqa: F401
    except ImportError:
        print("premailer_ms=skipped (not installed)")
    else:
        pm_s, _ = per_variant(
            got.inliner, lambda c: inline.premailer_engine(*c), max(3, repeat // 3)
        )
        print(f"premailer_ms={ms(pm_s)}")
        print(f"ratio_premailer_vs_css_inline={pm_s / css_s:.0f}x")

    if not args.no_node:
        binary = npm_mjml_bin()
        if binary is not None:
            bench_npm(binary, [c[0] for c in got.mjml], mjml_each, pipeline, repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
