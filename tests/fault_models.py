"""Test-only models that misbehave on purpose, registered through CNNBENCH_PLUGINS.

Each behaves on the meta device (static analysis) and misbehaves on real tensors.
"""

import os
import signal
import time

import torch
from torch import nn

from classic_cnns import register_model


class _Tiny(nn.Module):
    def __init__(self, action=None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)
        self.action = action

    def forward(self, x):
        if x.device.type != "meta" and self.action is not None:
            x = self.action(x)
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


def _segfault(x):
    os.kill(os.getpid(), signal.SIGSEGV)
    return x


def _hang(x):
    time.sleep(3600)
    return x


def _allocate_too_much(x):
    # a real CPU allocation failure, far beyond any machine's memory
    return x + torch.empty(2**45, dtype=torch.uint8).sum() * 0


OOM_AFTER = 100  # real forwards before fault_oom_later runs out of memory: past set-up and a 0.1 s warm-up
_forwards = [0]  # this worker's real forwards


def _out_of_memory_later(x):
    # what the CUDA allocator raises once a long run has fragmented it: only after set-up and warm-up are over
    time.sleep(0.002)
    _forwards[0] += 1
    if _forwards[0] > OOM_AFTER:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.11 GiB total "
                                          "capacity; 77.90 GiB already allocated)")
    return x


def _lie_in_channels_last(x):
    # a wrong kernel for one memory format: the output changes with the layout
    return x + 1 if x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1 else x


def _slow(x):
    time.sleep(0.05)
    return x


@register_model(family="fault", input_shape=(1, 8, 8))
def fault_crash(**kwargs):
    """Kills its own process with SIGSEGV in forward."""
    return _Tiny(_segfault)


@register_model(family="fault", input_shape=(1, 8, 8))
def fault_hang(**kwargs):
    """Sleeps for an hour in forward."""
    return _Tiny(_hang)


@register_model(family="fault", input_shape=(1, 8, 8))
def fault_oom(**kwargs):
    """Asks the CPU allocator for 32 TiB in forward."""
    return _Tiny(_allocate_too_much)


@register_model(family="fault", input_shape=(1, 8, 8))
def fault_oom_later(**kwargs):
    """Sleeps 2 ms per forward and raises CUDA's out-of-memory error from forward OOM_AFTER + 1 on: mid-sampling."""
    return _Tiny(_out_of_memory_later)


@register_model(family="fault", input_shape=(1, 8, 8))
def fault_slow(**kwargs):
    """Takes 50 ms per forward: slow enough to be killed mid-suite."""
    return _Tiny(_slow)


class _Layouts(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        y = self.conv(x)
        if x.device.type != "meta":
            y = _lie_in_channels_last(y)
        return self.fc(torch.flatten(y, 1))


@register_model(family="fault", input_shape=(3, 8, 8))
def fault_layout(**kwargs):
    """Gives a different answer in channels_last: its variants must be marked invalid."""
    return _Layouts()


def _paced(seconds):
    def wait(x):
        time.sleep(seconds)
        return x
    return wait


@register_model(family="fault", input_shape=(1, 8, 8))
def paced_2ms(**kwargs):
    """Sleeps 2 ms per forward: a known time, whatever the machine's speed."""
    return _Tiny(_paced(0.002))


@register_model(family="fault", input_shape=(1, 8, 8))
def paced_3ms(**kwargs):
    """Sleeps 3 ms per forward: 1.5x paced_2ms, a regression the gate must catch."""
    return _Tiny(_paced(0.003))


FRESH_BYTES = 40 << 20  # above glibc's largest mmap threshold (32 MiB): pages new to the process every forward


def _fresh_memory(x):
    torch.empty(FRESH_BYTES, dtype=torch.uint8).fill_(1)
    return x


@register_model(family="fault", input_shape=(1, 8, 8))
def fresh_memory(**kwargs):
    """Writes 40 MiB of memory new to its process every forward: 10,240 page faults a step."""
    return _Tiny(_fresh_memory)


FLAGS_SEEN: list[tuple[bool, bool]] = []  # (TF32 for matmul, TF32 for cuDNN) at each real forward


class _FlagProbe(_Tiny):
    def forward(self, x):
        if x.device.type != "meta":
            FLAGS_SEEN.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return super().forward(x)


@register_model(family="fault", input_shape=(1, 8, 8))
def flag_probe(**kwargs):
    """Records the TF32 flags in force at each forward (tests/test_cuda_logic.py)."""
    return _FlagProbe()


# Names a plugin may register, each hostile to one place a name goes (bench.escape): a path, a link, a terminal,
# Markdown and HTML, a plot's mathtext. Each is a tiny model that behaves.
HOSTILE_NAMES = {
    "path": "../../escaped",
    "nested path": "nested/name",
    "link": "javascript:alert(1)",
    "terminal": "\x1b[2J\x1b[1;31mFAKE ROW\r",
    "mathtext": "$\\frac{1}{0}$ ^_^ $",
    "markdown": "<img src=x onerror=alert(1)>|`md`[x](javascript:1)",
}


def _tiny(**kwargs):
    return _Tiny()


for _name in HOSTILE_NAMES.values():
    register_model(family="hostile", input_shape=(1, 8, 8))(
        type(_tiny)(_tiny.__code__, _tiny.__globals__, _name))  # the builder's __name__ is the registered name


@register_model(family="fault", input_shape=(1, 8, 8))
def counted_builds(**kwargs):
    """Sleeps 2 ms per forward; writes its process id to $CNNBENCH_TEST_BUILD_LOG each time it is built."""
    log = os.environ.get("CNNBENCH_TEST_BUILD_LOG")
    if log:
        with open(log, "a") as out:
            out.write(f"{os.getpid()}\n")
    return _Tiny(_paced(0.002))


def _two_thread_matmul(x):
    a = torch.ones(256, 256)
    (a @ a).sum()  # a parallel region: with two threads, OpenMP's pool spins after it
    return x


@register_model(family="fault", input_shape=(1, 8, 8))
def spinning_pool(**kwargs):
    """A 256x256 matmul per forward, so that a two-thread case leaves OpenMP's pool spinning after each block."""
    return _Tiny(_two_thread_matmul)
