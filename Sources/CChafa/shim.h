// chafa's headers include GLib's; pkg-config (Package.swift: pkgConfig "chafa") supplies both include paths.
#include <chafa.h>
