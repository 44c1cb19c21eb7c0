"""Training setup that holds on any machine: nothing downloaded, every CPU core used."""

from __future__ import annotations

import os


def test_ultralytics_trains_on_every_cpu_core():
    """Ultralytics alone would train with cpu_count - 1 threads: half of a 2-core machine."""
    import torch
    from ultralytics.utils.torch_utils import select_device

    from pipeline.backends.ultralytics_backend import prepare

    before = torch.get_num_threads()
    try:
        prepare()
        assert select_device("cpu", verbose=False).type == "cpu"
        assert torch.get_num_threads() == os.cpu_count()
        assert os.environ["YOLO_OFFLINE"] == "true"
    finally:
        torch.set_num_threads(before)
