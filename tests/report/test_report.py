"""`cvtasks report`: pages built from real runs, checked in headless Chromium (from file://)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest
from helpers import jsonl
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync.sync_playwright() as playwright:
        args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


def open_page(browser, page_path: Path, hash_: str = ""):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.requests = []  # type: ignore[attr-defined]
    page.problems = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.goto(page_path.resolve().as_uri() + hash_)
    page.wait_for_selector("body[data-ready='1']", timeout=15000)
    return page


@pytest.fixture(scope="module")
def classified(tmp_path_factory, photos, r18_file):
    """A classify run over drawn images (two labels come up) and one broken file."""
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    root = tmp_path_factory.mktemp("report")
    folder = root / "images"
    folder.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200), (30, 200, 30), (220, 220, 40)] * 3):
        Image.new("RGB", (80, 60), colour).save(folder / f"img{i:02d}.png")
    shutil.copy(photos["chelsea"], folder / "cat.jpg")
    (folder / "broken.jpg").write_bytes(b"<html>")
    out = root / "out"
    args = ["classify", folder, "-m", "resnet18", "-w", r18_file, "-o", out, "--save-images", "-q"]
    result = CliRunner().invoke(app, [str(a) for a in [*args, "--report", "-f", "jsonl"]])
    assert result.exit_code == 1, result.stderr  # the broken file
    assert "report: " in result.stderr
    return out, jsonl(result.stdout)


def test_the_page_shows_every_record_and_filters(browser, classified):
    out, records = classified
    page_path = out / "report" / "index.html"
    assert page_path.is_file() and (out / "report" / "thumbs").is_dir()
    page = open_page(browser, page_path)
    assert page.locator("#grid .item").count() == len(records) == 13
    assert not page.problems, page.problems
    report_dir = (out / "report").resolve().as_uri()
    assert all(u.startswith(report_dir + "/") for u in page.requests), page.requests  # nothing else
    labels = [r["predictions"][0]["label"] for r in records]
    label = max(set(labels), key=labels.count)
    page.select_option("#f-label", label)
    assert page.locator("#grid .item").count() == labels.count(label)
    assert "label=" in page.url  # the view can be shared
    shared = open_page(browser, page_path, page.url[page.url.index("#") :])
    assert shared.locator("#grid .item").count() == labels.count(label)
    assert page.locator("#failures-title").text_content() == "failures (1)"
    assert page.locator("#failures-box").get_attribute("open") is not None  # shown, not hidden
    failed = open_page(browser, page_path, "#failed=1")
    assert failed.locator("#grid .item").count() == 1
    assert "broken.jpg" in failed.locator("#grid .item").first.text_content()
    searched = open_page(browser, page_path, "#q=cat")
    assert searched.locator("#grid .item").count() == 1
    page.locator("#grid .item").first.click()
    assert page.locator("#detail table tbody tr").count() == 5  # the record's top-5
    assert page.locator("#detail .media img").count() == 1


def test_screenshot_is_a_page_not_a_blank(browser, classified, tmp_path):
    out, _ = classified
    page = open_page(browser, out / "report" / "index.html")
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot))
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 900)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, charts and thumbnails, not a blank
    thumb = Image.open(next((out / "report" / "thumbs").iterdir()))
    assert max(thumb.size) <= 256


def test_summaries_per_task(browser, cli, tmp_path, small_models, photos):
    from track_scenes import crossing_scene, write_sequence

    frcnn = "fasterrcnn_mobilenet_v3_large_320_fpn"
    detect_out = tmp_path / "detect"
    cli(["detect", photos["astronaut"], photos["coffee"], "-m", frcnn, "-w", small_models[frcnn],
         "--conf", "0.2", "-o", detect_out, "-q"])  # fmt: skip
    cli(["report", detect_out])
    page = open_page(browser, detect_out / "report" / "index.html")
    titles = page.locator("#summaries svg").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('aria-label'))"
    )
    assert titles == ["detections per class", "detection scores"]
    scene = write_sequence(crossing_scene(), tmp_path / "SCENE-01")
    track_out = tmp_path / "track"
    cli(["track", scene / "img1", "--detections", scene / "det" / "det.txt", "--line",
         "mid=160,0,160,240", "-o", track_out, "-q", "--report"])  # fmt: skip
    page = open_page(browser, track_out / "report" / "index.html")
    titles = page.locator("#summaries svg").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('aria-label'))"
    )
    assert "img1: line crossings over time" in titles or any("line crossings" in t for t in titles)
    assert page.locator("#grid .item").count() == 80
    assert page.locator("#grid .item img").count() == 80  # video frames get thumbnails too


def test_bad_folders(cli, tmp_path, classified):
    missing = cli(["report", tmp_path])
    assert missing.exit_code == 2 and "has no results.jsonl" in missing.stderr
    out, records = classified
    torn = tmp_path / "torn"
    shutil.copytree(out, torn, ignore=shutil.ignore_patterns("report"))
    with (torn / "results.jsonl").open("a") as handle:
        handle.write('{"source": "half')
    result = cli(["report", torn, "-o", tmp_path / "page"])
    assert result.exit_code == 0 and "the last line is torn" in result.stderr
    data = (tmp_path / "page" / "data.js").read_text()
    payload = json.loads(data[data.index("{") : data.rindex("}") + 1])
    assert len([i for i in payload["items"] if not i["error"]]) == len(records)


def test_a_run_without_a_model_says_so(cli, tmp_path):
    """`track --detections` runs no model: the header shows what the records say ran."""
    from track_scenes import crossing_scene, write_sequence

    scene = write_sequence(crossing_scene(), tmp_path / "CROSS-01")
    out = tmp_path / "out"
    ran = cli(["track", scene / "img1", "--detections", scene / "det" / "det.txt", "-o", out, "-q"])
    assert ran.exit_code == 0, ran.stderr
    assert cli(["report", out]).exit_code == 0
    text = (out / "report" / "data.js").read_text()
    header = json.loads(text[text.index("{") : text.rindex("}") + 1])["header"]
    assert header["model"] == f"detections:{scene / 'det' / 'det.txt'}"
    assert header["weights"].startswith("none") and "fasterrcnn" not in header["weights"]


def test_steps_hold_their_count_until_the_next_event_and_reach_the_end():
    from cvtasks.report.charts import steps

    assert steps([(0.0, 0.0), (1.5, 1.0), (2.0, 2.0)], x_end=3.0) == [
        (0.0, 0.0), (1.5, 0.0), (1.5, 1.0), (2.0, 1.0), (2.0, 2.0), (3.0, 2.0)
    ]  # fmt: skip
    assert steps([(0.0, 0.0)], x_end=None) == [(0.0, 0.0)]


def test_video_thumbnails_show_what_was_drawn_and_crossings_span_the_clip(cli, tmp_path):
    import re

    import av
    import numpy as np
    from track_scenes import crossing_scene, write_sequence

    scene = write_sequence(crossing_scene(), tmp_path / "SCENE-02")
    out = tmp_path / "out"
    ran = cli(["track", scene / "img1", "--detections", scene / "det" / "det.txt", "--line",
               "mid=160,0,160,240", "-o", out, "-q", "--save-images", "--report"])  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    records = jsonl((out / "results.jsonl").read_text())
    with av.open(str(out / records[0]["files"]["annotated"])) as video:
        drawn = [f.to_ndarray(format="rgb24") for f in video.decode(video=0)]
    k = 30  # a frame with tracked boxes on it
    raw = np.asarray(Image.open(sorted((scene / "img1").iterdir())[k]).convert("RGB"))
    thumb = np.asarray(Image.open(out / "report" / "thumbs" / f"{k:06d}.jpg"), dtype=float)

    def distance(frame):
        small = Image.fromarray(frame).resize(thumb.shape[1::-1], Image.BILINEAR)
        return float(np.abs(np.asarray(small, dtype=float) - thumb).mean())

    assert distance(drawn[k]) < 4 < distance(raw)  # the annotated frame, not the input

    text = (out / "report" / "data.js").read_text()
    data = json.loads(text[text.index("{") : text.rindex("}") + 1])
    svg = next(s["svg"] for s in data["summaries"] if "line crossings" in s.get("svg", ""))
    assert ">8 s<" in svg  # 80 frames at 10 fps: the axis spans the clip
    for points in re.findall(r'points="([^"]+)"', svg):
        xy = [tuple(map(float, p.split(","))) for p in points.split()]
        assert xy[-1][0] == max(x for x, _ in xy) > 500  # to the right edge (the clip's end)
        for (x0, y0), (x1, y1) in itertools.pairwise(xy):
            assert x0 == x1 or y0 == y1  # steps: flat or vertical, never a ramp
    captions = [i["caption"] for i in data["items"]]
    assert "object \u00d72" in captions


def test_eval_pages_in_a_browser(browser, cli, tmp_path, photos, r18_file):
    """The results pages of `eval explain` (the method beside its baselines, the mean curves)
    and of `eval classify` on a 1000-class model (a confusion of the classes that occur, no
    top-5 missing), as Chromium draws them."""
    from crafted_models import crafted_detector, labels_file, two_squares

    image = two_squares(tmp_path / "two.png")
    model = ["-m", "fasterrcnn_mobilenet_v3_large_320_fpn", "-w",
             crafted_detector(tmp_path / "d.pth"), "--labels", labels_file(tmp_path / "l.txt"),
             "--conf", "0.95"]  # fmt: skip
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "two.png", "width": 320, "height": 320}],
        "categories": [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                         "bbox": [20, 20, 100, 100], "area": 10000}]}))  # fmt: skip
    explained = tmp_path / "explained"
    result = cli(["eval", "explain", "saliency", image, *model, "--gt", gt, "--curve-steps", "4",
                  "-o", explained, "-q", "--report"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    page = open_page(browser, explained / "report" / "index.html")
    titles = page.locator("#summaries svg").evaluate_all(
        "nodes => nodes.map(n => n.getAttribute('aria-label'))"
    )
    for title in ("deletion AUC (lower is better)", "mean deletion curve (explained score)",
                  "mean insertion curve (explained score)"):  # fmt: skip
        assert title in titles
    curve = page.locator("#summaries svg[aria-label='mean deletion curve (explained score)']")
    assert curve.locator("polyline").count() == 3  # the method, random map, centre prior
    assert "saliency on 1 images, 2 explained targets" in page.locator("#summaries").inner_text()
    assert not page.problems

    data = tmp_path / "data"
    for label, name in (("coffee mug", "coffee"), ("tabby", "chelsea")):
        (data / label).mkdir(parents=True)
        shutil.copy(photos[name], data / label / f"{name}.jpg")
    evaluated = tmp_path / "evaluated"
    result = cli(["eval", "classify", data, "-m", "resnet18", "-w", r18_file, "-o", evaluated,
                  "-q", "--report"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((evaluated / "metrics.json").read_text())
    shown = len(metrics["classes"])
    assert metrics["classes_total"] == 1000 and 2 <= shown <= 4  # the two truths, their top-1s
    page = open_page(browser, evaluated / "report" / "index.html")
    matrix = page.locator("#summaries svg[aria-label='confusion matrix']")
    assert matrix.locator("rect").count() == shown * shown
    assert "top-5" in page.locator("#summaries").inner_text()
    assert not page.problems
