"""Running a tool's 3-D network faster on the CPU: channels-last convolutions, plain GroupNorm.

oneDNN's channels-last (NDHWC) 3-D convolutions are faster than its NCDHW ones (at 2x96^3 on
2 cores: a 1->1 channel 3^3 convolution 98 -> 30 ms, a 12->1 transposed one 82 -> 46 ms).
PyTorch's channels-last GroupNorm on the CPU is the opposite: slower (129 vs 20 ms for one
channel) and less exact (logits off by 2e-4 relative instead of 4e-7), so GroupNorm's input is
copied back to NCDHW. Per batch of two 96^3 windows: UNet (4, 8) 1.27x, UNet (8, 16, 32) 1.33x.
The same float32 operations, summed in another order.
"""

from contextlib import contextmanager

# Measured faster this way; other classes are unmeasured and run as they are.
CHANNELS_LAST_ON_CPU = {"UNet"}


def _plain_layout(module, args):
    # A one-channel tensor from a channels-last convolution has channel stride 1, which
    # `.contiguous()` accepts as it is and GroupNorm still takes for channels-last: copy to NCDHW.
    import torch

    return (args[0].clone(memory_format=torch.contiguous_format), *args[1:])


@contextmanager
def windows_runner(network, card: dict, device: str):
    """`network` on `device`, as the callable the sliding window runs each batch of windows through.

    A 3-D network of a class in CHANNELS_LAST_ON_CPU, on the CPU, runs channels-last for the
    duration (its weights stay channels-last after; its hooks are removed).
    """
    import torch

    network = network.to(device)
    if device != "cpu" or card["network"]["class"] not in CHANNELS_LAST_ON_CPU or \
            card["network"]["args"].get("spatial_dims") != 3:
        yield network
        return
    layout = torch.channels_last_3d
    network = network.to(memory_format=layout)
    hooks = [m.register_forward_pre_hook(_plain_layout) for m in network.modules()
             if isinstance(m, torch.nn.GroupNorm)]
    try:
        yield lambda windows: network(windows.contiguous(memory_format=layout))
    finally:
        for hook in hooks:
            hook.remove()
