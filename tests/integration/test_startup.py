"""The start of r53reg can always be stopped, and never waits on a file that is not one.

Usage: test_startup.py BIN_DIR   (holds r53reg and r53emu)

- ~/.aws/config (or the credentials file) is a FIFO nobody writes: r53reg is not blocked
  opening or reading it; it fails clearly ("not a regular file") instead.
- SIGTERM while the start waits on a slow Route 53 (every call delayed 60 s): the process
  exits at once, saying it stopped during startup, instead of after the calls.
Prints 'N passed, M failed' last.
"""
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'r53emu'))
from emutest import Emu, Tally, ZONE  # noqa: E402

BIN = sys.argv[1]
T = Tally()


def base_env(home):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('AWS_') and not k.startswith('R53REG_')}
    env.update({'HOME': home, 'AWS_EC2_METADATA_DISABLED': 'true'})
    return env


def reg_args(endpoint):
    return [os.path.join(BIN, 'r53reg'), '--provider', 'route53', '--zone-id', ZONE,
            '--aws-endpoint', endpoint, '--listen', '127.0.0.1:0',
            '--record-name', 'app.example.com']


def test_fifo(which):
    with tempfile.TemporaryDirectory(prefix='r53home-') as home:
        os.mkdir(os.path.join(home, '.aws'))
        fifo = os.path.join(home, '.aws', which)
        os.mkfifo(fifo)
        proc = subprocess.Popen(reg_args('http://127.0.0.1:9'), env=base_env(home),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            T.check(False, f'r53reg with ~/.aws/{which} a FIFO returns', 'it hung')
            return
        err = err.decode(errors='replace')
        T.check(proc.returncode == 1, f'exit 1 with ~/.aws/{which} a FIFO',
                f'exit {proc.returncode}: {err}')
        T.check(f'{fifo}: not a regular file' in err, 'the message names the file and why', err)


def wait_for_line(proc, text, timeout):
    """Read stderr until a line holds text; returns what was read."""
    buf = b''
    fd = proc.stderr.fileno()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and text.encode() not in buf:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors='replace')


def test_sigterm_during_slow_start(emu):
    emu.faults(latency_ms=60000)
    with tempfile.TemporaryDirectory(prefix='r53home-') as home:
        env = base_env(home)
        env.update({'AWS_ACCESS_KEY_ID': emu.akid, 'AWS_SECRET_ACCESS_KEY': emu.secret})
        proc = subprocess.Popen(reg_args(emu.endpoint), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            seen = wait_for_line(proc, 'aws credentials resolved', 20)
            T.check('aws credentials resolved' in seen, 'r53reg reached its first Route 53 call',
                    seen)
            time.sleep(0.5)  # inside the delayed GetHostedZone
            T.check(proc.poll() is None, 'still starting (the call is delayed)')
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                T.check(False, 'SIGTERM during the start ends the process',
                        'still running 10 s after SIGTERM')
                return
            err = seen + err.decode(errors='replace')
            print(f'  exited {time.monotonic() - sent:.2f} s after SIGTERM')
            T.check(proc.returncode == 0, 'exit 0 after SIGTERM', f'exit {proc.returncode}')
            T.check('msg="stopped during startup" signal=SIGTERM' in err,
                    'the log says it stopped during startup', err)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            emu.faults(latency_ms=0)


def main():
    T.run('~/.aws/config is a FIFO', test_fifo, 'config')
    T.run('~/.aws/credentials is a FIFO', test_fifo, 'credentials')
    emu = Emu(os.path.join(BIN, 'r53emu'))
    try:
        T.run('SIGTERM during a slow start', test_sigterm_during_slow_start, emu)
    finally:
        emu.stop()
    T.finish()


if __name__ == '__main__':
    main()
