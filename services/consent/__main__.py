"""`python -m services.consent`: run the consent service until SIGTERM or SIGINT."""

from services.consent.app import assemble
from services.consent.settings import ConsentSettings
from shared.runtime import run

if __name__ == "__main__":
    run(ConsentSettings(), assemble)
