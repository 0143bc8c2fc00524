"""Table-to-table transforms: DivoT5 directional versions, fill-in-the-middle, decontamination.

``directional`` (intermediate versions and noised old code -> new code), ``fim`` (PSM/SPM samples),
``contamination`` (n-gram overlap with benchmark programs), ``cli`` (``editlm directional``,
``editlm fim``, ``editlm decontaminate``)."""

from __future__ import annotations

from editlm._lazy import lazy_exports

# The public names, one a line, loaded on first use so that the commands (and ``editlm --help``) stay light.
_EXPORTS = {
    "directional_examples": "editlm.data.transforms.directional",
    "intermediate_versions": "editlm.data.transforms.directional",
    "DirectionalJob": "editlm.data.transforms.directional",
    "fim_row": "editlm.data.transforms.fim",
    "FimJob": "editlm.data.transforms.fim",
    "ContaminationIndex": "editlm.data.transforms.contamination",
    "default_index": "editlm.data.transforms.contamination",
}
__all__, __getattr__ = lazy_exports(__name__, _EXPORTS)
