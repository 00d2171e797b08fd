import om_native, om_pure

VERSION = om_pure.VERSION
