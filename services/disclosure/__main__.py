"""`python -m services.disclosure`: run the disclosure service until SIGTERM or SIGINT."""

from services.disclosure.app import DEFINITION
from shared.runtime import run

if __name__ == "__main__":
    run(DEFINITION)
