"""A report as a list of sections (text, tables, figures), written once and rendered as Markdown and HTML."""
from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (relative image path, caption)
    bullets: list[str] = field(default_factory=list)


def to_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for table in section.tables:
            lines.append("| " + " | ".join(table.headers) + " |")
            lines.append("| " + " | ".join("---" for _ in table.headers) + " |")
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
            lines.append("")
        lines += [f"- {bullet}" for bullet in section.bullets]
        if section.bullets:
            lines.append("")
        for path, caption in section.figures:
            lines += [f"![{caption}]({path})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def to_html(title: str, sections: list[Section]) -> str:
    escape = html.escape
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}figcaption{font-style:italic}</style></head><body>", f"<h1>{escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{escape(section.title)}</h2>")
        parts += [f"<p>{escape(paragraph)}</p>" for paragraph in section.paragraphs]
        for table in section.tables:
            parts.append("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in table.headers) + "</tr>")
            parts += ["<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in table.rows]
            parts.append("</table>")
        if section.bullets:
            parts.append("<ul>" + "".join(f"<li>{escape(bullet)}</li>" for bullet in section.bullets) + "</ul>")
        parts += [f"<figure><img src='{escape(path)}' alt='{escape(caption)}'><figcaption>{escape(caption)}"
                  "</figcaption></figure>" for path, caption in section.figures]
    parts.append("</body></html>")
    return "\n".join(parts)
