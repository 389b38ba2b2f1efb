"""The status page (GET /ui) in a real browser: headless Chromium, driven through
chromedriver by Selenium, against a real r53reg on the strict Route 53 emulator.

Usage: test_ui.py BIN_DIR OPENAPI_YAML   (BIN_DIR holds r53reg and r53emu)

Backends on 127.0.12.x (TCP listeners on one port, checked every 200 ms with their own
`check`): two registered and healthy, one down (nothing listens: its check fails), one
draining; one IPv6 backend from 2001:db8::/32 without a check (never contacted). Checks:
  - /status, /ui, /ui/app.js and /ui/app.css answer as openapi.yaml declares (the same checker
    as tests/integration/test_api_conformance.py), /ui with its Content-Security-Policy;
  - the page shows each backend in its state (rows carry data-ip and data-state), the Route 53
    budget, the committer, the buckets and the recent changes, and runs without a console
    error (the CSP refuses anything inline);
  - a backend registered through the API appears on the open page, and a deregistered one
    disappears, without a reload (a marker set in the page survives);
  - a request path holding markup shows in the recent changes as text;
  - the state filters and the search box;
  - a screenshot, saved in the working directory (its path printed) and copied to
    /work/ui-screenshot.png when /work exists.
Exits 77 (ctest: skipped) with the reason when Chromium, chromedriver or Selenium is missing.
Prints 'N passed, M failed' last.
"""
import http.client
import json
import os
import shutil
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'r53emu'))
sys.path.insert(0, HERE)

SKIP = 77
CHROMIUM = '/usr/bin/chromium'
CHROMEDRIVER = '/usr/bin/chromedriver'
NET = '127.0.12.'  # the backends' addresses (test_health uses 127.0.3.x-127.0.9.x)
CHECK = {'type': 'tcp', 'interval_ms': 200, 'timeout_ms': 150, 'fall': 2, 'rise': 2}
SHOW_TIMEOUT = 15  # seconds the page may take to show a change (it polls every 2 s at worst)
COPY_TO = '/work/ui-screenshot.png'


def skip_reason():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f'{path} is missing (Debian packages chromium and chromium-driver: ' \
                   'scripts/install-deps.sh --test)'
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'python3-selenium is missing (scripts/install-deps.sh --test)'
    return None


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=''):
        if cond:
            self.passed += 1
            print(f'ok   {what}', flush=True)
        else:
            self.failed += 1
            print(f'FAIL {what}' + (f': {detail}' if detail else ''), flush=True)
        return cond


T = Tally()


class Listener:
    """A TCP backend: accepts and closes, so a tcp check passes."""

    def __init__(self, ip, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.close()

    def stop(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def listeners(ips):
    """Listeners on ips sharing one port the kernel gave the first (retried when taken)."""
    for _ in range(50):
        probe = socket.socket()
        probe.bind((ips[0], 0))
        port = probe.getsockname()[1]
        probe.close()
        made = []
        try:
            for ip in ips:
                made.append(Listener(ip, port))
            return port, made
        except OSError:
            for m in made:
                m.stop()
    raise RuntimeError('no common free port for ' + ', '.join(ips))


def call(reg, method, path, body=None):
    conn = http.client.HTTPConnection('127.0.0.1', reg.port, timeout=30)
    headers = {'Content-Type': 'application/json'} if body is not None else {}
    conn.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                 headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, None


def wait_for(fn, timeout, step=0.1):
    """fn() until it returns something true, or None after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(step)


def state_of(reg, ip):
    status, doc = call(reg, 'GET', '/backends/' + ip)
    return doc.get('state') if status == 200 and doc else None


# --- the documented answers ---------------------------------------------------------------

def check_contract(reg, spec_path):
    import test_api_conformance as conf
    spec = conf.Spec(spec_path)
    results = conf.Results()
    chk = conf.Checker(spec, results)
    for method, path, want in (('GET', '/status', 200), ('GET', '/ui', 200),
                               ('GET', '/ui/app.js', 200), ('GET', '/ui/app.css', 200),
                               ('HEAD', '/ui', 200), ('POST', '/status', 405),
                               ('DELETE', '/ui', 405)):
        ans = conf.request(reg.port, method, path)
        problems = chk.conformance(ans, want)
        T.check(not problems, f'{method} {path} conforms to openapi.yaml', '; '.join(problems))
    ans = conf.request(reg.port, 'GET', '/status')
    doc = ans.json()
    T.check(doc['totals']['a']['down'] == 1 and doc['totals']['a']['draining'] == 1,
            '/status counts the down and the draining backend', json.dumps(doc['totals']))
    T.check('route53' in doc and doc['route53'].get('calls', 0) > 0,
            '/status shows the Route 53 client at work', json.dumps(doc.get('route53')))
    T.check(any(c.get('target') == NET + '4' and c.get('path', '').endswith('/drain')
                for c in doc['recent_changes']),
            '/status lists the drain among the recent changes')
    T.check(any(c.get('target') == NET + '3' and c.get('event') == 'taken out of DNS' and
                c['who'] == 'health check' and c.get('change_id')
                for c in doc['recent_changes']),
            '/status lists the health check taking the down backend out of DNS, with its '
            'change id', json.dumps(doc['recent_changes'][:6]))


def check_refusals(reg):
    """Refused requests are kept apart: 300 of them do not push the changes out."""
    import test_api_conformance as conf
    for _ in range(300):
        conf.request(reg.port, 'POST', '/backends/010.0.0.1')
    doc = conf.request(reg.port, 'GET', '/status').json()
    T.check(any(c.get('target') == NET + '4' and c.get('path', '').endswith('/drain')
                for c in doc['recent_changes']),
            '/status lists the drain among the recent changes, after 300 refusals')
    refused = sum(1 for c in doc['recent_changes'] if c.get('status') == 400)
    T.check(refused == 50, 'the last 50 refusals are listed too', str(refused))


# --- the page -------------------------------------------------------------------------------

def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
              '--window-size=1400,1900'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def rows(drv):
    """{ip: state} of the backends table's rows."""
    return drv.execute_script(
        "const o = {}; for (const tr of document.querySelectorAll('#backends tbody tr'))"
        " o[tr.dataset.ip] = tr.dataset.state; return o;")


def shows(drv, want):
    """The rows once every ip in want shows in its state (a state None: absent)."""
    def look():
        got = rows(drv)
        return got if all(got.get(ip) == st for ip, st in want.items()) else None
    return wait_for(look, SHOW_TIMEOUT, 0.2)


def check_page(reg, drv, shot):
    from selenium.webdriver.common.by import By
    base = f'http://127.0.0.1:{reg.port}'
    drv.get(base + '/ui')
    want = {NET + '1': 'registered', NET + '2': 'registered', NET + '3': 'down',
            NET + '4': 'draining', '2001:db8::10': 'registered'}
    got = shows(drv, want)
    T.check(got, 'the page shows every backend in its state', f'rows {rows(drv)}')
    drv.execute_script("window.r53regMarker = 'not reloaded';")

    text = drv.find_element(By.TAG_NAME, 'body').text
    for what in ('allowed calls/s', 'Throttling answers', 'records changed', 'queued',
                 'last resync', 'app.example.com_0'):
        T.check(what in text, f'the page shows "{what}"')
    down_row = drv.find_element(By.CSS_SELECTOR, f'#backends tr[data-ip="{NET}3"]').text
    T.check('down' in down_row and 'refused' in down_row.lower(),
            'the down row shows its health and last error', down_row)
    T.check(wait_for(lambda: drv.find_elements(
        By.CSS_SELECTOR, f'#changes tr[data-target="{NET}4"]'), SHOW_TIMEOUT),
        'the recent changes list the drain')
    T.check(wait_for(lambda: drv.find_elements(
        By.CSS_SELECTOR, f'#changes tr[data-target="{NET}3"][data-event="taken out of DNS"]'),
        SHOW_TIMEOUT), 'the recent changes list the health check\'s move')

    lease = drv.find_element(By.CSS_SELECTOR, f'#backends tr[data-ip="{NET}1"]').text
    T.check('in 9 min' in lease or 'in 10 min' in lease,
            'the leased row shows its lease deadline (GET /backends?detail=true)', lease)
    T.check(wait_for(lambda: 'watching' in drv.find_element(By.ID, 'live').text, SHOW_TIMEOUT),
            'the page follows the watch (X-R53reg-Index)', drv.find_element(By.ID, 'live').text)

    # Changes made through the API show on the open page, through the watch: a parked
    # GET /backends?index=..&wait=.. answers the change (not the 5 s refresh).
    status, _ = call(reg, 'POST', '/backends/' + NET + '5')
    t0 = time.monotonic()
    T.check(status == 201, f'register {NET}5: 201', str(status))
    T.check(shows(drv, {NET + '5': 'registered'}),
            'a backend registered through the API appears without a reload', f'{rows(drv)}')
    print(f'  shown {time.monotonic() - t0:.2f} s after the API answered', flush=True)
    T.check(drv.execute_script(
        "return performance.getEntriesByType('resource').some((e) =>"
        " e.name.includes('/backends?detail=true&index=') && e.name.includes('&wait='));"),
        'a watch request (index, wait) completed on the change')
    status, _ = call(reg, 'DELETE', '/backends/' + NET + '2')
    T.check(status == 200, f'deregister {NET}2: 200', str(status))
    T.check(shows(drv, {NET + '2': None}),
            'a deregistered backend disappears without a reload', f'{rows(drv)}')
    T.check(drv.execute_script('return window.r53regMarker;') == 'not reloaded',
            'the page was not reloaded')

    # Text from requests is shown as text: a path holding markup (refused 400, audited).
    conn = http.client.HTTPConnection('127.0.0.1', reg.port, timeout=30)
    conn.request('POST', '/backends/<b>x</b>')
    refused = conn.getresponse().status
    conn.close()
    T.check(refused == 400, 'a path with markup is refused 400', str(refused))
    T.check(wait_for(lambda: '/backends/<b>x</b>' in
                     drv.find_element(By.ID, 'refusals').text, SHOW_TIMEOUT),
            'the recent refusals show the markup as text')
    T.check(not drv.find_elements(By.CSS_SELECTOR, '#refusals b, #changes b'),
            'no element came from the markup')
    T.check('/backends/<b>x</b>' not in drv.find_element(By.ID, 'changes').text,
            'a refusal is not listed among the changes')

    # Filters and search.
    drv.find_element(By.CSS_SELECTOR, '[data-filter="down"]').click()
    T.check(rows(drv) == {NET + '3': 'down'}, 'the down filter shows the down row only',
            f'{rows(drv)}')
    drv.find_element(By.CSS_SELECTOR, '[data-filter="draining"]').click()
    T.check(rows(drv) == {NET + '4': 'draining'},
            'the draining filter shows the draining row only', f'{rows(drv)}')
    drv.find_element(By.CSS_SELECTOR, '[data-filter="registered"]').click()
    T.check(set(rows(drv)) == {NET + '1', NET + '5', '2001:db8::10'},
            'the registered filter shows the registered rows only', f'{rows(drv)}')
    drv.find_element(By.CSS_SELECTOR, '[data-filter="all"]').click()
    search = drv.find_element(By.ID, 'search')
    search.send_keys('2001:db8')
    T.check(rows(drv) == {'2001:db8::10': 'registered'}, 'the search box narrows the rows',
            f'{rows(drv)}')
    search.clear()
    search.send_keys(' ')  # an input event after clear() (which sends none)
    T.check(len(rows(drv)) == 5, 'an empty search shows every row again', f'{rows(drv)}')

    errors = [e for e in drv.get_log('browser') if e.get('level') == 'SEVERE']
    T.check(not errors, 'no console errors (the CSP refused nothing)',
            '; '.join(e.get('message', '') for e in errors))

    drv.set_window_size(1400, max(1200, drv.execute_script(
        'return document.documentElement.scrollHeight;') + 40))
    drv.save_screenshot(shot)
    print(f'screenshot: {shot}', flush=True)
    if os.path.isdir(os.path.dirname(COPY_TO)):
        shutil.copyfile(shot, COPY_TO)
        print(f'screenshot copy: {COPY_TO}', flush=True)


def main():
    why = skip_reason()
    if why:
        print(f'SKIP: {why}', flush=True)
        return SKIP
    bin_dir, spec_path = sys.argv[1], sys.argv[2]
    import reg_process
    from emutest import Emu
    reg_process.BIN = bin_dir
    emu = Emu(os.path.join(bin_dir, 'r53emu'), '--insync-after-ms', '50')
    port, backends = listeners([NET + '1', NET + '2', NET + '4', NET + '5'])
    reg = drv = None
    try:
        reg = reg_process.Reg(emu, '--max-down-share', '1', '--resync-interval', '2')
        check = dict(CHECK, port=port)
        for ip, body in ((NET + '1', {'check': check, 'lease_seconds': 600}),
                         (NET + '2', {'check': check}), (NET + '3', {'check': check}),
                         (NET + '4', {'check': check}), ('2001:db8::10', None)):
            status, doc = call(reg, 'POST', '/backends/' + ip, body)
            T.check(status == 201, f'register {ip}: 201', f'{status} {doc}')
        status, doc = call(reg, 'POST', '/backends/' + NET + '4/drain')
        T.check(status == 200, f'drain {NET}4: 200', f'{status} {doc}')
        T.check(wait_for(lambda: state_of(reg, NET + '3') == 'down', 10),
                f'{NET}3 (nothing listens) goes down')
        T.check(wait_for(lambda: call(reg, 'GET', '/status')[1]['replicas'].get(
            'last_resync_at'), 10), 'a resync ran (--resync-interval 2)')
        check_contract(reg, spec_path)
        drv = browser()
        check_page(reg, drv, os.path.abspath('ui-screenshot.png'))
        check_refusals(reg)
    finally:
        if drv is not None:
            drv.quit()
        if reg is not None:
            T.check(reg.stop() == 0, 'r53reg exits 0 on SIGTERM')
        for b in backends:
            b.stop()
        emu.stop()
    print(f'{T.passed} passed, {T.failed} failed', flush=True)
    return 1 if T.failed else 0


if __name__ == '__main__':
    sys.exit(main())
