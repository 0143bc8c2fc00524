"""The languages of mined files, from their extension.

Seed 001 kept "22 popular programming, scripting, and markup languages, including Python, HTML, Bash
scripts, SQL, C++" without listing them all. The list here is the 21 languages of the BigQuery query
behind CommitPack (bigcode/github-commits), which contains all five named ones, plus CSS, the markup
language that goes with HTML. A language is decided by the file extension alone (no content sniffing),
so the same path always gets the same language.
"""

from __future__ import annotations

import posixpath

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "Python": (".py", ".pyi", ".pyw"),
    "Java": (".java",),
    "JavaScript": (".js", ".mjs", ".cjs", ".jsx"),
    "TypeScript": (".ts", ".tsx", ".mts", ".cts"),
    "HTML": (".html", ".htm", ".xhtml"),
    "CSS": (".css",),
    "Shell": (".sh", ".bash", ".zsh", ".ksh"),
    "SQL": (".sql",),
    "C": (".c", ".h"),
    "C++": (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".tpp"),
    "C#": (".cs",),
    "Go": (".go",),
    "Rust": (".rs",),
    "Swift": (".swift",),
    "PHP": (".php", ".phtml"),
    "Ruby": (".rb", ".rake", ".gemspec"),
    "Perl": (".pl", ".pm", ".t", ".pod"),
    "R": (".r",),
    "Dart": (".dart",),
    "Kotlin": (".kt", ".kts"),
    "MATLAB": (".m",),
    "Common Lisp": (".lisp", ".lsp", ".cl", ".asd"),
}
LANGUAGES: tuple[str, ...] = tuple(EXTENSIONS)
_BY_EXTENSION = {ext: lang for lang, exts in EXTENSIONS.items() for ext in exts}


def language_of(path: str) -> str | None:
    """The language of ``path`` (a repository path with ``/``), or None when it is not one of the 22.

    Extensions are matched case-insensitively (``.R`` and ``.r`` are both R; ``.C`` is C, not C++).
    """
    name = posixpath.basename(path)
    dot = name.rfind(".")
    if dot <= 0:  # no extension, or a dot file such as ``.bashrc``
        return None
    return _BY_EXTENSION.get(name[dot:].lower())
