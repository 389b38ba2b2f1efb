"""The instance kit (deploy/instance/r53reg-instance) against a real r53reg: the script runs
under dash with curl, as an instance would, each case from its own 127.0.12.x source address
(curl --interface through R53REG_CURL_OPTS), against r53reg processes on the embedded store
with a token file holding a self token and --allow-special.

Usage: test_instance_kit.py BIN_DIR   (holds r53reg)

Cases: the script is valid POSIX sh (dash -n; shellcheck when installed); cloud-init.yaml
holds exact copies of the script and the unit; boot registers the
caller's address through /backends/self; register keeps retrying while r53reg is down and
succeeds once it listens; a self token naming another address and a wrong token are refused
at once with r53reg's detail and nothing registered; run keeps a 3 s lease alive for 8 s (a
registration without renewal expires meanwhile) and on SIGTERM drains and deregisters; the
shutdown drains, deletes no earlier than no_new_traffic_after and exits 0; the shutdown bound
holds when the drain's wait is longer (deregistered early), when r53reg refuses connections
and when it accepts them and never answers, and the boot timeout holds likewise. Prints
'N passed, M failed' last.
"""
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
sys.path.insert(0, HERE)
from emutest import Tally  # noqa: E402
import reg_process  # noqa: E402

T = Tally()
SCRIPT = os.path.normpath(os.path.join(HERE, '..', '..', 'deploy', 'instance', 'r53reg-instance'))
SHELL = shutil.which('dash') or '/bin/sh'  # Debian's /bin/sh
SELF_TOKEN = 'kitSelf-7Qm2vX9pL4rT8wZ1'
ADMIN_TOKEN = 'kitAdmin-3Jd8sK2nF6hY0cB5'
SLACK = 3.0  # seconds a bounded command may take beyond its bound (process starts, a busy host)
TMP = tempfile.mkdtemp(prefix='instance-kit-')


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


TOKENS = write('tokens', f'# scope name token\nself fleet {SELF_TOKEN}\nadmin ops {ADMIN_TOKEN}\n')
SELF_FILE = write('self-token', f'# the fleet token\n{SELF_TOKEN}\n')


def start_reg(*extra):
    """r53reg on its embedded store (reg_process.Reg with the provider flags overridden: the
    last flag wins) with the token file."""
    noemu = types.SimpleNamespace(akid='unused', secret='unused', endpoint='http://127.0.0.1:9')
    return reg_process.Reg(noemu, '--provider', 'memory', '--token-file', TOKENS, *extra)


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def script_env(url, src, **settings):
    """The script's environment: no config file, the URL, the token file, curl bound to the
    source address src; settings override (None removes a variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('R53REG_')}
    env.update({'R53REG_INSTANCE_CONFIG': '/dev/null', 'R53REG_URL': url,
                'R53REG_TOKEN_FILE': SELF_FILE, 'R53REG_CURL_OPTS': f'--interface {src}',
                'R53REG_BOOT_TIMEOUT': '30', 'R53REG_SHUTDOWN_TIMEOUT': '20'})
    for k, v in settings.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


def spawn(cmd, env):
    return subprocess.Popen([SHELL, SCRIPT, cmd], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def run(cmd, env, timeout=60):
    """(exit status, stderr, seconds) of one script command."""
    t0 = time.monotonic()
    p = spawn(cmd, env)
    _, err = p.communicate(timeout=timeout)
    return p.returncode, err, time.monotonic() - t0


def url(reg):
    return f'http://127.0.0.1:{reg.port}'


def state(reg, ip):
    """The backend's state, or its HTTP status when there is none (404: not registered)."""
    st, doc = reg.req('GET', '/backends/' + ip, timeout=10)
    return doc.get('state') if st == 200 and doc else st


def rfc3339(text):
    return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc).timestamp()


# --- cases ---------------------------------------------------------------------------------

def test_syntax():
    for sh in [s for s in (shutil.which('dash'), '/bin/sh') if s]:
        p = subprocess.run([sh, '-n', SCRIPT], capture_output=True, text=True)
        T.eq((p.returncode, p.stderr), (0, ''), f'{sh} -n')
    T.check(os.access(SCRIPT, os.X_OK), 'the script is executable')
    if shutil.which('shellcheck'):
        p = subprocess.run(['shellcheck', '-s', 'sh', SCRIPT], capture_output=True, text=True)
        T.eq(p.returncode, 0, 'shellcheck -s sh: ' + p.stdout[-2000:])
    else:
        print('  (shellcheck not installed: skipped)')
    p = subprocess.run([SHELL, SCRIPT, 'bogus'], capture_output=True, text=True)
    T.eq(p.returncode, 2, 'an unknown command exits 2')
    env = script_env('', '127.0.12.1', R53REG_URL=None)
    p = subprocess.run([SHELL, SCRIPT, 'register'], env=env, capture_output=True, text=True)
    T.check(p.returncode == 2 and 'R53REG_URL' in p.stderr, 'no R53REG_URL exits 2 naming it',
            f'{p.returncode} {p.stderr!r}')
    env = script_env('http://127.0.0.1:9', '127.0.12.1', R53REG_CURL_OPTS='--no-such-option')
    t0 = time.monotonic()
    p = subprocess.run([SHELL, SCRIPT, 'register'], env=env, capture_output=True, text=True)
    T.check(p.returncode == 2 and 'R53REG_CURL_OPTS' in p.stderr and time.monotonic() - t0 < 3,
            'an option curl refuses exits 2 at once', f'{p.returncode} {p.stderr!r}')


def test_cloud_init():
    """cloud-init.yaml holds exact copies of the script and the unit (it is generated)."""
    kit = os.path.dirname(SCRIPT)
    gen = subprocess.run([sys.executable, os.path.join(kit, 'cloud-init.py')],
                         capture_output=True, text=True)
    with open(os.path.join(kit, 'cloud-init.yaml')) as f:
        committed = f.read()
    T.check(gen.returncode == 0 and gen.stdout == committed,
            'cloud-init.yaml is what cloud-init.py writes (run it after editing the script or '
            'the unit)', gen.stderr)
    try:
        import yaml
    except ImportError:
        print('  (python3-yaml not installed: the YAML itself not parsed)')
        return
    doc = yaml.safe_load(committed)
    files = {f['path']: f for f in doc['write_files']}
    with open(SCRIPT) as f:
        T.eq(files['/usr/local/bin/r53reg-instance']['content'], f.read(), 'the script copy')
    T.eq(files['/usr/local/bin/r53reg-instance']['permissions'], '0755', 'the script mode')
    T.eq(files['/etc/r53reg-instance/token']['permissions'], '0600', 'the token mode')
    T.check(any('r53reg-instance.service' in c for c in doc['runcmd']), 'runcmd starts the unit')


def test_boot(reg):
    # Settings from a config file, as the unit's EnvironmentFile= would hold them (quotes,
    # "export", comments), the environment holding none of them.
    conf = write('instance.conf', f'# r53reg-instance settings\nR53REG_URL="{url(reg)}"\n'
                 f"export R53REG_TOKEN_FILE='{SELF_FILE}'\n"
                 'R53REG_CURL_OPTS=--interface 127.0.12.1\n')
    env = script_env('', '', R53REG_URL=None, R53REG_TOKEN_FILE=None, R53REG_CURL_OPTS=None,
                     R53REG_INSTANCE_CONFIG=conf)
    rc, err, secs = run('register', env)
    T.eq(rc, 0, 'register exits 0: ' + err)
    T.eq(state(reg, '127.0.12.1'), 'registered', 'the caller address is registered')
    T.check('registered 127.0.12.1' in err, 'the message names the address', err)
    T.check(secs < 3, 'registered at once', f'{secs:.2f}s')
    # Registering again is a 200 with the same placement: boot scripts may repeat it.
    rc, err, _ = run('register', env)
    T.check(rc == 0 and '(200 registered' in err, 'a repeat answers 200, exit 0', err)
    st, doc = reg.req('GET', '/backends', timeout=10)
    T.eq(sorted(b['ip'] for b in doc['backends']) if st == 200 else st, ['127.0.12.1'],
         'nothing else registered')


def test_retry_while_down():
    port = free_port()
    env = script_env(f'http://127.0.0.1:{port}', '127.0.12.2', R53REG_BOOT_TIMEOUT=30)
    t0 = time.monotonic()
    p = spawn('register', env)
    time.sleep(2)
    T.check(p.poll() is None, 'register still trying while r53reg is down')
    reg = start_reg('--listen', f'127.0.0.1:{port}', '--ttl', '1')
    up = time.monotonic()
    try:
        _, err = p.communicate(timeout=40)
        done = time.monotonic()
        T.eq(p.returncode, 0, 'register exits 0 once r53reg listens: ' + err)
        T.check(done >= up, 'it exited after r53reg came up')
        T.check(done - up < 8, 'within a few backoff steps of r53reg coming up', f'{done - up:.2f}s')
        tries = err.count('retrying in')
        T.check(tries >= 1, 'stderr shows the retries', err)
        # Jittered exponential backoff from 1 s: a handful of attempts in 2 s, not a flood.
        T.check(tries <= 6, 'backoff, not a busy loop', f'{tries} retries in {done - t0:.1f}s')
        T.check('Couldn' in err or 'onnect' in err, 'the retries say why (connection refused)', err)
        T.eq(state(reg, '127.0.12.2'), 'registered', 'registered after r53reg came up')
    finally:
        reg.stop()


def test_refusals(reg):
    # A self token may change only the caller's address: R53REG_IP naming another one is a 403,
    # final, with r53reg's detail.
    env = script_env(url(reg), '127.0.12.3', R53REG_IP='127.0.12.99', R53REG_BOOT_TIMEOUT=30)
    rc, err, secs = run('register', env)
    T.eq(rc, 1, 'another address: exit 1: ' + err)
    T.check(secs < 3, 'at once, no retry loop', f'{secs:.2f}s')
    T.check("it may only change 127.0.12.3, the caller's address" in err and '403' in err,
            "the message carries r53reg's 403 detail", err)
    T.check('retrying' not in err, 'no retry', err)
    T.eq(state(reg, '127.0.12.99'), 404, 'the other address is not registered')
    T.eq(state(reg, '127.0.12.3'), 404, 'nor the caller address')
    # The same refusal at shutdown.
    rc, err, secs = run('deregister', env)
    T.check(rc == 1 and 'may only change 127.0.12.3' in err and secs < 3,
            'deregister of another address: exit 1 at once with the detail', f'{rc} {secs:.2f}s {err}')

    # A wrong token: 401, final.
    bad = write('bad-token', 'kitWrong-5Tg7Yh9Uj1Ik3Ol\n')
    env = script_env(url(reg), '127.0.12.3', R53REG_TOKEN_FILE=bad, R53REG_BOOT_TIMEOUT=30)
    rc, err, secs = run('register', env)
    T.eq(rc, 1, 'a wrong token: exit 1: ' + err)
    T.check(secs < 3 and 'retrying' not in err, 'at once, no retry loop', f'{secs:.2f}s {err}')
    T.check('401' in err and 'bearer token is not valid' in err, 'the message says 401 and why', err)
    T.check('kitWrong' not in err, 'the token is not printed', err)
    T.eq(state(reg, '127.0.12.3'), 404, 'nothing registered')


def test_lease(reg):
    # A control without renewal: a 3 s lease from `register` alone runs out.
    ctl = script_env(url(reg), '127.0.12.14', R53REG_LEASE_SECONDS=3)
    rc, err, _ = run('register', ctl)
    T.check(rc == 0 and 'lease 3 s' in err, 'control registered with a lease', err)

    env = script_env(url(reg), '127.0.12.4', R53REG_LEASE_SECONDS=3, R53REG_SHUTDOWN_TIMEOUT=10)
    p = spawn('run', env)
    try:
        deadline = time.monotonic() + 5
        while state(reg, '127.0.12.4') != 'registered' and time.monotonic() < deadline:
            time.sleep(0.1)
        st, doc = reg.req('GET', '/backends/127.0.12.4', timeout=10)
        T.check(st == 200 and doc.get('lease_seconds') == 3, 'run registered with the lease',
                f'{st} {doc}')
        seen, t_end = set(), time.monotonic() + 8
        while time.monotonic() < t_end:
            seen.add(state(reg, '127.0.12.4'))
            time.sleep(0.25)
        T.eq(seen, {'registered'}, 'still registered 8 s later (the lease renewed)')
        T.eq(state(reg, '127.0.12.14'), 404, 'the control without renewal expired meanwhile')
        T.check(p.poll() is None, 'run still running')
        # SIGTERM is the shutdown: drain, wait for no_new_traffic_after (TTL 2), delete, exit 0.
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
        secs = time.monotonic() - t0
        T.eq(p.returncode, 0, 'SIGTERM: run exits 0: ' + err)
        T.check('drained 127.0.12.4' in err and 'deregistered 127.0.12.4' in err,
                'it drained and deregistered', err)
        T.check('already deregistered' not in err, 'the lease lasted until the DELETE', err)
        T.check(2 <= secs < 10 + SLACK, 'after the drain wait, within the bound', f'{secs:.2f}s')
        T.eq(state(reg, '127.0.12.4'), 404, 'deregistered')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_shutdown(reg):
    env = script_env(url(reg), '127.0.12.5')
    rc, err, _ = run('register', env)
    T.eq(rc, 0, 'registered: ' + err)
    # Watch the backend while the script shuts it down: when it turned draining, what the drain
    # said, when it disappeared (wall clock, the same host's as r53reg's).
    seen = {'states': [], 'nnta': None, 'gone': None}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            st, doc = reg.req('GET', '/backends/127.0.12.5', timeout=10)
            now = time.time()
            if st == 200:
                seen['states'].append(doc['state'])
                if doc.get('no_new_traffic_after'):
                    seen['nnta'] = doc['no_new_traffic_after']
            elif st == 404 and seen['gone'] is None:
                seen['gone'] = now
            time.sleep(0.02)

    w = threading.Thread(target=watch)
    w.start()
    try:
        rc, err, secs = run('deregister', env)
    finally:
        time.sleep(0.1)
        stop.set()
        w.join()
    T.eq(rc, 0, 'deregister exits 0: ' + err)
    T.check('draining' in seen['states'], 'it drained first', str(seen['states'][-5:]))
    T.check(seen['nnta'] is not None and seen['gone'] is not None,
            'no_new_traffic_after seen, then the address gone', str(seen))
    if seen['nnta'] and seen['gone']:
        nnta = rfc3339(seen['nnta'])
        T.check(seen['gone'] >= nnta, 'not deleted before no_new_traffic_after',
                f'gone {seen["gone"] - nnta:+.3f}s after it')
        T.check(seen['gone'] - nnta < 1.5, 'deleted soon after it',
                f'{seen["gone"] - nnta:.3f}s after it')
    T.check(3 <= secs < 3 + SLACK, 'the wait is the TTL (3 s)', f'{secs:.2f}s')
    T.eq(state(reg, '127.0.12.5'), 404, 'GET answers 404')
    T.check('deregistered 127.0.12.5' in err and 'early' not in err, 'says it deregistered', err)
    # Again: not registered any more, nothing to do.
    rc, err, _ = run('deregister', env)
    T.check(rc == 0 and 'not registered' in err, 'a second deregister exits 0', err)


def test_bounded(reg_long):
    bound = 2
    # The drain's wait is the TTL, 60 s: the bound cuts it and the DELETE still goes.
    env = script_env(url(reg_long), '127.0.12.6', R53REG_SHUTDOWN_TIMEOUT=bound)
    rc, err, _ = run('register', env)
    T.eq(rc, 0, 'registered: ' + err)
    rc, err, secs = run('deregister', env)
    T.eq(rc, 0, 'deregistered early: exit 0: ' + err)
    T.check(secs < bound + SLACK, f'within the {bound} s bound', f'{secs:.2f}s')
    T.check(secs >= bound * 2 / 3 - 0.1, 'it waited as long as the bound allowed', f'{secs:.2f}s')
    T.check('early' in err and 'R53REG_SHUTDOWN_TIMEOUT' in err, 'says it deregistered early', err)
    T.eq(state(reg_long, '127.0.12.6'), 404, 'deregistered')

    # r53reg stopped: connections refused.
    refused = f'http://127.0.0.1:{free_port()}'
    rc, err, secs = run('deregister', script_env(refused, '127.0.12.6', R53REG_SHUTDOWN_TIMEOUT=bound))
    T.eq(rc, 3, 'refused connections: exit 3: ' + err)
    T.check(secs < bound + SLACK, f'within the {bound} s bound', f'{secs:.2f}s')
    T.check('gave up' in err, 'says it gave up', err)

    # A listener that accepts connections and never answers.
    hole = socket.socket()
    hole.bind(('127.0.0.1', 0))
    hole.listen(64)
    try:
        silent = f'http://127.0.0.1:{hole.getsockname()[1]}'
        rc, err, secs = run('deregister', script_env(silent, '127.0.12.6',
                                                     R53REG_SHUTDOWN_TIMEOUT=bound))
        T.eq(rc, 3, 'a silent r53reg: exit 3: ' + err)
        T.check(secs < bound + SLACK, f'within the {bound} s bound', f'{secs:.2f}s')
        T.check('gave up' in err and 'timed out' in err, 'says it gave up after timeouts', err)
        # The boot timeout bounds register the same way.
        rc, err, secs = run('register', script_env(silent, '127.0.12.6', R53REG_BOOT_TIMEOUT=bound))
        T.eq(rc, 3, 'register against a silent r53reg: exit 3: ' + err)
        T.check(secs < bound + SLACK, f'within the {bound} s boot timeout', f'{secs:.2f}s')
        T.check('gave up registering' in err, 'says it gave up', err)
    finally:
        hole.close()


def main():
    reg_process.BIN = sys.argv[1]
    T.run('syntax', test_syntax)
    T.run('cloud-init', test_cloud_init)
    reg = start_reg('--ttl', '3')
    reg_long = start_reg('--ttl', '60')
    try:
        T.run('boot', test_boot, reg)
        T.run('retry while down', test_retry_while_down)
        T.run('refusals', test_refusals, reg)
        T.run('lease', test_lease, reg)
        T.run('shutdown', test_shutdown, reg)
        T.run('bounded', test_bounded, reg_long)
    finally:
        T.check(reg.stop() == 0, 'r53reg exits 0')
        T.check(reg_long.stop() == 0, 'r53reg (TTL 60) exits 0')
        shutil.rmtree(TMP, ignore_errors=True)
    T.finish()


if __name__ == '__main__':
    main()
