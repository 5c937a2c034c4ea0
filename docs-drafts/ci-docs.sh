# Lines for .ci/run: Debian's Chromium for the docs site's browser tests (tests/test_docs_site.py), as root on
# a fresh Debian 12 machine. Playwright drives it through executable_path; never run `playwright install`.
# fonts-dejavu-core is named so screenshots have readable text even with --no-install-recommends.
command -v chromium >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
}
chromium --version
