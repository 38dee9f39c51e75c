"""`python -m services.disclosure`: run the disclosure service until SIGTERM or SIGINT."""

from services.disclosure.app import assemble
from services.disclosure.settings import DisclosureSettings
from shared.runtime import run

if __name__ == "__main__":
    run(DisclosureSettings(), assemble)
