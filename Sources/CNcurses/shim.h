// Wide-character curses (get_wch, add_wch, cchar_t) needs these before the header.
#define _XOPEN_SOURCE_EXTENDED 1
#define NCURSES_WIDECHAR 1
#include <locale.h>
#include <ncursesw/ncurses.h>

// Swift 6 refuses to read C's mutable globals (stdscr, stdin, stdout) from isolated code; these read them once.
static inline WINDOW *sd3_newterm_window(const char *name) {
    return newterm(name, stdout, stdin) != NULL ? stdscr : NULL;
}
