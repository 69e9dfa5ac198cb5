"""Stand-in for get-pip.py, used by ansible-test where its download site cannot be reached.

ansible-test runs this with get-pip's arguments (what follows `pip install`, plus --no-setuptools /
--no-wheel). pip is bootstrapped with ensurepip in a child process (in-process, ensurepip turns
pip's configuration off and the machine's CA bundle setting is lost), then pip installs the rest.
"""

import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *args])
