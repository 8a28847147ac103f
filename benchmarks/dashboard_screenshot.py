"""The README's screenshot: validation accuracy of the runs of a dashboard.

Drives Debian's chromium through chromium-driver's WebDriver protocol
(plain HTTP on loopback), shows validation/main/accuracy in place of
main/loss on the project page, and saves the page as a PNG. From the
repository root, with `make ui` serving:
python -m benchmarks.dashboard_screenshot URL OUT.png
"""
import argparse
import base64
import json
import socket
import subprocess
import time
import urllib.request

# The page has filled its chart and table from the API.
LOADED = "return document.querySelectorAll('.rt-tbody input').length > 1"
# Tick validation/main/accuracy alone on the left y axis.
SHOW_ACCURACY = """
const axis = document.querySelector('.axis-configurator');  // yAxis
for (const label of axis.querySelectorAll('label')) {
  const box = label.querySelector('input');
  const key = label.textContent.trim();
  if (box.checked !== (key === 'validation/main/accuracy')) box.click();
}
"""


def main(url, png):
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    driver = subprocess.Popen(['chromedriver', '--port={}'.format(port)],
                              stdout=subprocess.DEVNULL)
    base = 'http://127.0.0.1:{}'.format(port)
    try:
        time.sleep(2)
        session = base + '/session/' + call(base + '/session', {
            'capabilities': {'alwaysMatch': {'goog:chromeOptions': {
                'binary': '/usr/bin/chromium', 'args': [
                    '--headless', '--no-sandbox', '--disable-gpu',
                    '--window-size=1280,900']}}}})['sessionId']
        call(session + '/url', {'url': url})
        deadline = time.monotonic() + 120
        while not call(session + '/execute/sync', {
                'script': LOADED, 'args': []}):
            assert time.monotonic() < deadline, 'the page did not load'
            time.sleep(1)
        call(session + '/execute/sync', {'script': SHOW_ACCURACY, 'args': []})
        time.sleep(2)  # the chart redraws
        with open(png, 'wb') as f:
            f.write(base64.b64decode(call(session + '/screenshot')))
        call(session, method='DELETE')
    finally:
        driver.terminate()
        driver.wait()


def call(url, body=None, method=None):
    """The value of one WebDriver command."""
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(),
        method=method, headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)['value']


if __name__ == '__main__':
    parser = argparse.ArgumentParser(
        prog='python -m benchmarks.dashboard_screenshot', description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('url', help='the dashboard\'s address, e.g. '
                        'http://127.0.0.1:5000')
    parser.add_argument('png', help='the PNG to write')
    arguments = parser.parse_args()
    main(arguments.url, arguments.png)
