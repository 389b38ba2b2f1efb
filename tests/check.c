/* check.c: the failure counter behind check.h. */
#include "check.h"

CHECK_DEFINE_GLOBALS;
