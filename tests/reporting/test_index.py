"""reports/index.html: per study its status, report links, figure thumbnails, tables and what
is still missing, read back with html.parser from a small tree of results and reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from matplotlib.figure import Figure

from samlora.reporting.index import write_index
from samlora.study.studies import Study

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def find_all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and (cls is None or cls in child.classes):
                    found.append(child)
                found.extend(child.find_all(tag, cls))
        return found

    def find(self, tag: str, cls: str | None = None) -> Node:
        hits = self.find_all(tag, cls)
        assert len(hits) == 1, (tag, cls, len(hits))
        return hits[0]

    def by_id(self, ident: str) -> Node:
        hits = [n for n in self.find_all("section") if n.attrs.get("id") == ident]
        assert len(hits) == 1, ident
        return hits[0]

    def shape(self, skip: str) -> tuple:
        """The tree as nested tuples, leaving out elements of class ``skip``."""
        return (self.tag, sorted(self.attrs.items()),
                tuple(c if isinstance(c, str) else c.shape(skip) for c in self.children
                      if isinstance(c, str) or skip not in c.classes))


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(path: Path) -> Node:
    builder = _TreeBuilder()
    builder.feed(path.read_text(encoding="ascii"))  # the page is ASCII only
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def _touch(path: Path, text: str = "x\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _figure(path: Path, pdf: bool) -> None:
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([0, 1, 2], [0, 1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    if pdf:
        fig.savefig(path.with_suffix(".pdf"))


def _run(name: str) -> SimpleNamespace:
    return SimpleNamespace(name=name)  # write_index needs only a run's name


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, Study]]:
    """``alpha``: everything present; ``beta``: one evaluation, its human row and one of its
    two reports missing."""
    root = tmp_path / "project"
    a, b = _run("topolora_sam__drive__seed0"), _run("sam2lora__drive__seed0")
    for run, test in ((a, "drive"), (b, "drive")):
        _touch(root / "results/runs" / run.name / test / "metrics_per_image.csv")
    _touch(root / "results/human/drive/metrics_per_image.csv")
    for name in ("alpha", "beta"):
        _touch(root / "results" / name / "summary.csv")
    _touch(root / "reports/alpha/main_results.html", "<html></html>")
    _touch(root / "reports/beta/main_results.html", "<html></html>")
    _figure(root / "reports/alpha/figures/roc curve.png", pdf=False)
    _figure(root / "reports/alpha/figures/dice_box.png", pdf=True)
    _touch(root / "reports/alpha/tables/main_table.md")
    _touch(root / "reports/alpha/tables/main_table.csv")
    studies = {
        "alpha": Study(name="alpha", paper="topolora", feeds=("Table 2", "Fig. 3"),
                       runs=(a, b), evaluations=((a, "drive"), (b, "drive")),
                       reports=("main_results",), human=("drive",)),
        "beta": Study(name="beta", paper="TopoLoRA <SAM> & co", feeds=("rank <ablation>",),
                      runs=(a,), evaluations=((a, "drive"), (a, "stare")),
                      reports=("main_results", "samlora_results"), human=("stare",)),
    }
    return root, studies


def test_index_lists_status_links_thumbnails_and_missing(tree) -> None:
    root, studies = tree
    out = write_index(studies, root / "reports" / "index.html")
    page = parse(out)
    assert out == root / "reports" / "index.html"
    # self-contained: inline CSS, nothing fetched from elsewhere
    assert not page.find_all("script") and not page.find_all("link")
    assert len(page.find_all("style")) == 1

    rows = page.find("table", "studies").find_all("tr")[1:]
    cells = [[td.text for td in row.find_all("td")] for row in rows]
    assert cells == [["alpha", "topolora", "2", "2 / 2", "1 / 1", "1 / 1", "complete"],
                     ["beta", "TopoLoRA <SAM> & co", "1", "1 / 2", "0 / 1", "1 / 2",
                      "3 missing"]]
    assert [r.find("a").attrs["href"] for r in rows] == ["#study-alpha", "#study-beta"]

    alpha = page.by_id("study-alpha")
    assert alpha.find("p", "status").text == "complete" and "complete" in \
        alpha.find("p", "status").classes
    assert not alpha.find_all("ul", "missing")
    assert alpha.find("span", "evals").text == "2 / 2"
    assert alpha.find("span", "human").text == "1 / 1"
    assert "Table 2; Fig. 3" in alpha.find("p", "meta").text
    assert [(a.attrs["href"], a.text) for a in alpha.find_all("a", "report")] == \
        [("alpha/main_results.html", "main_results")]
    figures = alpha.find_all("figure")
    assert [f.find("img").attrs["src"] for f in figures] == \
        ["alpha/figures/dice_box.png", "alpha/figures/roc%20curve.png"]
    for fig in figures:
        img = fig.find("img")
        assert img.attrs["loading"] == "lazy" and int(img.attrs["width"]) > 0
        link = fig.find_all("a")[0]
        assert link.attrs["href"] == img.attrs["src"] and img in link.children
    assert figures[0].find("figcaption").text == "dice_box · pdf"
    assert figures[0].find("a", "pdf").attrs["href"] == "alpha/figures/dice_box.pdf"
    assert figures[1].find("figcaption").text == "roc curve"
    assert not figures[1].find_all("a", "pdf")
    assert [a.attrs["href"] for a in alpha.find_all("a", "table")] == \
        ["alpha/tables/main_table.md", "alpha/tables/main_table.csv"]

    beta = page.by_id("study-beta")
    assert "incomplete" in beta.find("p", "status").classes
    assert [li.text for li in beta.find("ul", "missing").find_all("li")] == [
        "topolora_sam__drive__seed0 on stare", "human row on stare",
        "report samlora_results (not rendered yet)"]
    assert beta.find("span", "evals").text == "1 / 2"
    assert [a.attrs["href"] for a in beta.find_all("a", "report")] == \
        ["beta/main_results.html"]
    assert beta.find("span", "not-rendered").text == "samlora_results"
    assert "samlora_results: not rendered yet" in beta.find("ul", "reports").text
    assert not beta.find_all("img") and not beta.find_all("a", "table")
    # escaped, never markup
    assert "TopoLoRA <SAM> & co" in beta.find("p", "meta").text
    assert "rank <ablation>" in beta.find("p", "meta").text
    assert not page.find_all("sam") and not page.find_all("ablation")

    hrefs = [a.attrs["href"] for a in page.find_all("a")]
    local = [h for h in hrefs if not h.startswith("#")]
    assert "../results/alpha/summary.csv" in local
    assert all((out.parent / unquote(h)).is_file() for h in local), local


def test_index_timestamp_is_one_element(tree) -> None:
    root, studies = tree
    first = parse(write_index(studies, root / "reports" / "index.html"))
    written = first.find("p", "written")
    assert written.text.startswith("written ") and written.text.endswith(" UTC")
    second = parse(write_index(studies, root / "reports" / "index.html"))
    assert first.shape(skip="written") == second.shape(skip="written")


def test_index_elsewhere_links_back_to_root(tree, tmp_path: Path) -> None:
    root, studies = tree
    out = write_index(studies, tmp_path / "site" / "index.html", root=root)
    page = parse(out)
    img = page.by_id("study-alpha").find_all("img")[0]
    assert img.attrs["src"] == "../project/reports/alpha/figures/dice_box.png"
    assert (out.parent / img.attrs["src"]).is_file()
    assert page.by_id("study-beta").find("span", "evals").text == "1 / 2"


def test_index_with_nothing_produced_yet(tree, tmp_path: Path) -> None:
    _, studies = tree
    page = parse(write_index(studies, tmp_path / "empty" / "reports" / "index.html"))
    alpha = page.by_id("study-alpha")
    assert alpha.find("span", "evals").text == "0 / 2"
    assert not alpha.find_all("a", "report") and not alpha.find_all("img")
    assert [li.text for li in alpha.find("ul", "missing").find_all("li")] == [
        "topolora_sam__drive__seed0 on drive", "sam2lora__drive__seed0 on drive",
        "human row on drive", "summary (results/alpha/summary.csv)",
        "report main_results (not rendered yet)"]
