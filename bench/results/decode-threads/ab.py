import time, dataclasses
from cpgait.runtime.live import thread_budget as tb
from cpgait.runtime.app import run as runmod
from cpgait.runtime.app.run import RunOptions, run_live
orig = tb.ThreadBudget.auto.__func__
for rnd in range(3):
    for dec in (1, 2):
        runmod.ThreadBudget.auto = classmethod(lambda cls, cores=None, pose=None, dec=dec: dataclasses.replace(orig(cls, cores, pose), decode=dec))
        t = time.perf_counter()
        s, _ = run_live(RunOptions(source='.cache/demo.mp4', model='runtime/assets/reference.onnx'))
        w = time.perf_counter() - t
        print(rnd, 'decode threads', dec, 'frames', s.frames, 'fps %.1f' % (s.frames / w), flush=True)
