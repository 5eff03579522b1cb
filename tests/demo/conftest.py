import os
import sys

# deploy_helpers.require_tool: chromium (installs the Debian package when missing, as CI does)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "deploy"))
