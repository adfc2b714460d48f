from . import app  # noqa: F401
from . import chassis  # noqa: F401
from . import device  # noqa: F401
from . import watchdog  # noqa: F401
