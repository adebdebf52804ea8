"""A fixed reference kernel, timed beside every case to normalize for machine speed.

Step times divided by the reference time compare across machines of different
speed, and across moments of different load on a shared runner, far better than
seconds do. The kernel is a 1024x1024 float32 matmul, compute-bound like the
MLP's dense layers: about 2.1 GFLOP per call.
"""

import statistics
import time

REFERENCE_SIZE = 1024
REFERENCE_KERNEL = f"matmul {REFERENCE_SIZE}x{REFERENCE_SIZE} float32"
_REPETITIONS = 5
_MIN_REPETITION_SECONDS = 0.05

_matmul = None


def _compiled_matmul():
    global _matmul
    if _matmul is None:
        import tensorflow as tf

        _matmul = tf.function(tf.linalg.matmul)
    return _matmul


class PairedReference:
    """Times one small reference matmul after every round, as pytest-benchmark's teardown.

    Dividing each round's step time by the reference time measured right after it
    cancels load that slows both, such as another process on a shared runner.
    A 512x512 matmul (0.27 GFLOP) keeps the added time per round small.
    """

    SIZE = 512

    def __init__(self, device="/CPU:0", timer=time.perf_counter):
        import tensorflow as tf

        self._timer = timer
        self._matmul = _compiled_matmul()
        with tf.device(device):
            self._a = tf.random.stateless_uniform([self.SIZE, self.SIZE], seed=[5, 6])
            self._b = tf.random.stateless_uniform([self.SIZE, self.SIZE], seed=[7, 8])
        self._matmul(self._a, self._b).numpy()
        self.seconds = []

    def __call__(self, *args, **kwargs):
        start = self._timer()
        self._matmul(self._a, self._b).numpy()
        self.seconds.append(self._timer() - start)


def time_reference_kernel(device="/CPU:0", timer=time.perf_counter):
    """Return the median seconds of one reference matmul on `device`, over a few repetitions."""
    import tensorflow as tf

    matmul = _compiled_matmul()
    with tf.device(device):
        a = tf.random.stateless_uniform([REFERENCE_SIZE, REFERENCE_SIZE], seed=[1, 2])
        b = tf.random.stateless_uniform([REFERENCE_SIZE, REFERENCE_SIZE], seed=[3, 4])
        matmul(a, b).numpy()  # traces, and warms the kernel up

        calls = 1
        times = []
        for _ in range(_REPETITIONS):
            start = timer()
            for _ in range(calls):
                product = matmul(a, b)
            product.numpy()  # host read: the matmul has finished on the device
            elapsed = timer() - start
            times.append(elapsed / calls)
            calls = max(1, int(_MIN_REPETITION_SECONDS / (elapsed / calls)))
    return statistics.median(times)
