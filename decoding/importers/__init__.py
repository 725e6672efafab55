"""Lab-format importers: each turns a lab's files into a :class:`~decoding.recording.Recording`.

Registered by name (``nlp4neuro``, ``suite2p``, ``chen2018``, ``nwb``)::

    from decoding.importers import import_recording
    result = import_recording("nlp4neuro", "raw_data_f9", "fish9.h5", planes="0-5")
    print(result.report.text())

or ``python -m decoding import FORMAT SRC --out FILE``. See docs/importers.md.
"""

from __future__ import annotations

from decoding.importers.base import (
    Importer,
    ImportReport,
    ImportResult,
    get_importer,
    import_recording,
    importer_names,
    register_importer,
)

__all__ = [
    "Importer",
    "ImportReport",
    "ImportResult",
    "get_importer",
    "import_recording",
    "importer_names",
    "register_importer",
]
