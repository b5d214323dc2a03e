"""ToolMenu: run an approved AI tool on the series a CaseViewer shows, from inside the page; and
`tool_layer`, the one label map of a stored SEG, a tool's labels and their overlaps that the viewer shows.

Plain ipywidgets (the same in JupyterLab and Voila): the approved tools for the series' modality,
a Run button, a status line and, once a tool has run, "Save as DICOM SEG". The tool runs in the
kernel, synchronously; the Run button is disabled meanwhile. Every failure (a refused tool, a
missing catalogue, a SEG that cannot be written) is shown in the status line, never raised.
"""

import html
import logging

import ipywidgets as W
import numpy as np

from ..errors import WorkbenchError

log = logging.getLogger(__name__)
# A tool's layer is drawn in the colours farthest from those already shown (a SEG brings its own):
# blues and magentas for the tool, yellows, greens and oranges where the SEG and the tool overlap.
TOOL_COLORS = ["#00b7ff", "#4363d8", "#f032e6", "#911eb4", "#46f0f0", "#008080"]
AGREE_COLORS = ["#ffe119", "#bcf60c", "#f58231", "#fabebe", "#e6beff", "#9a6324"]
ERROR = "color:#7f1d1d;background:#fee2e2;border:1px solid #fca5a5;padding:6px 8px;border-radius:3px;margin:4px 0"


def _message(e: Exception) -> str:
    """A failure as the status line shows it: the message and, for a WorkbenchError, what to do."""
    if isinstance(e, WorkbenchError):
        text = html.escape(e.message)
        return text + (f"<br><i>what to do:</i> {html.escape(e.hint)}" if e.hint else "")
    return html.escape(f"{type(e).__name__}: {e}")


class ToolMenu(W.VBox):
    """A "Run tool" menu for `viewer`: the approved tools whose card modality is the series'.

    Args:
        viewer: the CaseViewer whose series the tool runs on and whose overlay shows the result.
        tools: a `imaging_workbench.tools.Tools` (default `Tools()`: the sandbox's /tools/catalog.json).

    `result` holds the last ToolResult shown (None before any); a refused run leaves it, and the
    overlay, as they were.
    """

    def __init__(self, viewer, tools=None):
        super().__init__()
        self.add_class("wb-tool-menu")
        if tools is None:
            from ..tools.notebook import Tools

            tools = Tools()
        self.viewer, self.tools, self.result = viewer, tools, None
        self.choice = W.Dropdown(description="tool", layout=W.Layout(width="340px"),
                                 style={"description_width": "40px"})
        self.run_button = W.Button(description="Run", icon="play", button_style="primary")
        self.save_button = W.Button(description="Save as DICOM SEG", icon="save", disabled=True)
        self.status = W.HTML()
        self.run_button.add_class("wb-tool-run")
        self.save_button.add_class("wb-tool-save")
        self.status.add_class("wb-tool-status")
        self.children = [W.HBox([self.choice, self.run_button, self.save_button]), self.status]
        self.run_button.on_click(lambda _: self.run())
        self.save_button.on_click(lambda _: self.save())
        self._list_tools()

    @property
    def modality(self) -> str:
        volume = getattr(self.viewer, "volume", None)
        return volume.modality if volume is not None else ""

    def _list_tools(self) -> None:
        """Fill the dropdown with the approved (id, version)s for the viewer's series' modality."""
        if getattr(self.viewer, "volume", None) is None:
            return self._unavailable("the viewer has no series to run a tool on")
        try:
            rows = self.tools.list(as_frame=False)
        except WorkbenchError as e:
            return self._unavailable(_message(e), error=True)
        options = [(f"{r['id']} {r['version']} ({r['body_part']})", (r["id"], r["version"]))
                   for r in rows if r["modality"] == self.modality]
        if not options:
            return self._unavailable(f"no approved tool for {html.escape(self.modality or 'this series')}")
        self.choice.options, self.choice.disabled, self.run_button.disabled = options, False, False
        self.choice.value = options[0][1]
        self.status.value = ""

    def _unavailable(self, text: str, error: bool = False) -> None:
        self.choice.options, self.choice.disabled, self.run_button.disabled = [], True, True
        self.status.value = f"<div class='wb-error' style='{ERROR}'>{text}</div>" if error else text

    def run(self) -> None:
        """Run the chosen tool on the viewer's series and show its labels beside the stored SEG."""
        if self.choice.value is None:
            return
        tool_id, version = self.choice.value
        self.run_button.disabled = True
        self.status.value = f"running {html.escape(tool_id)} {html.escape(version)}…"
        try:
            result = self.tools.run(tool_id, self.viewer.volume, version=version)
            self.viewer.show_tool_result(result)
            volumes = result.measurements()
        except Exception as e:  # noqa: BLE001 - whatever went wrong is shown in the page, not as a traceback
            if not isinstance(e, WorkbenchError):
                log.exception("tool %s %s failed", tool_id, version)
            self.status.value = (f"<div class='wb-error' style='{ERROR}'><b>{html.escape(tool_id)} {html.escape(version)}"
                                 f" did not run.</b><br>{_message(e)}</div>")
            return
        finally:
            self.run_button.disabled = False
        self.result = result
        self.save_button.disabled = False
        sizes = ", ".join(f"{html.escape(str(r.label))} {r.volume_ml:.1f} ml" for r in volumes.itertuples())
        self.status.value = (f"done: {html.escape(tool_id)} {html.escape(version)}: {sizes or 'no segments'}")

    def save(self) -> None:
        """Save the last result as a DICOM SEG (in ~/tool-results/<tool>/) and show where."""
        if self.result is None:
            return
        try:
            path = self.result.save_seg()
        except Exception as e:  # noqa: BLE001 - shown in the page
            if not isinstance(e, (WorkbenchError, OSError, ValueError)):
                log.exception("saving the SEG of %s failed", self.result.tool)
            self.status.value = f"<div class='wb-error' style='{ERROR}'><b>Not saved.</b><br>{_message(e)}</div>"
            return
        self.status.value = f"saved as <code>{html.escape(str(path))}</code>"


def _tool_name(tool: dict) -> str:
    return f"{tool.get('id', 'tool')} {tool.get('version', '')}".rstrip()


def _structure(label: str) -> str:
    """What a segment label names, for matching a SEG's "Tumour 1" with a tool's "tumour"."""
    return label.strip().rstrip("0123456789").strip().lower()


def _distinct(candidates: list[str], used: list[str]) -> str:
    """The candidate colour farthest (in RGB) from every colour already on screen."""
    taken = [_rgb(c) for c in used if isinstance(c, str) and len(c) == 7]
    if not taken:
        return candidates[0]
    return max(candidates, key=lambda c: min(np.linalg.norm(_rgb(c) - other) for other in taken))


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], float)


def tool_layer(stored, tool_labels: np.ndarray, tool_segments: list[dict], tool: dict
               ) -> tuple[np.ndarray, list[dict]]:
    """One label map of a stored SEG, a tool's labels and their overlaps (see show_tool_result).

    Args:
        stored: (labels uint8, [{number, label, color}]) of the stored SEG, or None.
        tool_labels: the tool's labels on the same grid, 0 = none.
        tool_segments: [{number, label}] of the tool.
        tool: {id, version} of the tool.

    Raises:
        ValueError: more than 255 segments in all.
    """
    seg_labels, seg_segments = stored if stored is not None else (np.zeros(tool_labels.shape, np.uint8), [])
    by_number = {s["number"]: s for s in seg_segments}
    used = [s["color"] for s in seg_segments]
    next_number = max([0, *by_number]) + 1
    out = seg_labels.astype(np.uint16)  # stored segments keep their numbers where the tool marks nothing
    segments = [dict(s) for s in seg_segments]
    tool_mask = tool_labels > 0
    pairs = np.unique(seg_labels[tool_mask].astype(np.uint32) * 65536 + tool_labels[tool_mask])
    for segment in tool_segments:
        number, next_number = next_number, next_number + 1
        out[tool_labels == segment["number"]] = number  # first the tool alone, then its overlaps on top
        segments.append({"number": number, "label": f"{segment['label']} ({_tool_name(tool)})",
                         "color": _distinct(TOOL_COLORS, used)})
        used.append(segments[-1]["color"])
    names = {segment["number"]: segment["label"] for segment in tool_segments}
    for code in (p for p in pairs.tolist() if p >= 65536):
        s_number, t_number = divmod(code, 65536)
        s_label = by_number.get(s_number, {}).get("label", f"segment {s_number}")
        t_label = names.get(t_number, f"segment {t_number}")
        number, next_number = next_number, next_number + 1
        out[(seg_labels == s_number) & (tool_labels == t_number)] = number
        text = (f"{s_label}: SEG and {tool.get('id', 'tool')} agree" if _structure(s_label) == _structure(t_label)
                else f"{s_label} (SEG) overlaps {t_label} ({tool.get('id', 'tool')})")
        segments.append({"number": number, "label": text, "color": _distinct(AGREE_COLORS, used)})
        used.append(segments[-1]["color"])
    if next_number - 1 > 255:
        raise ValueError(f"the SEG's and {_tool_name(tool)}'s segments and their overlaps need {next_number - 1} "
                         "segment numbers; a viewer shows at most 255: show fewer stored segments")
    return out.astype(np.uint8), segments
