"""Fixtures for the widgets' Python side: known volumes and a recorder of messages to the browser.

- `known_ct`: a 24x32x40 int16 CT whose values at known voxels are predictable (see KNOWN).
- `sent`: patches a widget's `send` and returns the list of (content, buffers) it sent.
"""

import numpy as np
import pytest

from imaging_workbench.dicom.volume import Volume

# Background air, a soft-tissue block and a bone block, at known (z, y, x) boxes.
KNOWN = {"air": -1000, "tissue": 40, "bone": 1000}
TISSUE = (slice(4, 20), slice(8, 24), slice(4, 20))
BONE = (slice(4, 20), slice(8, 24), slice(24, 36))


def make_known_ct(shape=(24, 32, 40), spacing=(2.5, 0.8, 0.8)) -> Volume:
    a = np.full(shape, KNOWN["air"], dtype=np.int16)
    a[TISSUE] = KNOWN["tissue"]
    a[BONE] = KNOWN["bone"]
    return Volume(a, spacing, (-16.0, -12.8, 100.0), np.eye(3), "CT", "1.2.3.4", "known phantom", "P001")


@pytest.fixture
def known_ct() -> Volume:
    return make_known_ct()


@pytest.fixture
def sent():
    def record(widget):
        log = []
        widget.send = lambda content, buffers=None: log.append((content, [bytes(b) for b in (buffers or [])]))
        return log

    return record
