"""editlm: language models that write code as edits.

The package follows the pipeline: ``edits`` (diffs and sample formats, shared by every stage),
``data``, ``models``, ``train``, ``generate``, ``evaluate``, and the interfaces ``cli`` and ``serve``.
"""

__version__ = "0.1.0"
