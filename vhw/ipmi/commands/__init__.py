from . import app  # noqa: F401
from . import chassis  # noqa: F401
from . import device  # noqa: F401
from . import watchdog  # noqa: F401
from . import storage  # noqa: F401
from . import users  # noqa: F401
from . import bootopts  # noqa: F401
from . import dcmi  # noqa: F401
from . import sensor, sdr  # noqa: F401
from . import session  # noqa: F401
from . import cipher  # noqa: F401
from . import lanconfig, payload  # noqa: F401
