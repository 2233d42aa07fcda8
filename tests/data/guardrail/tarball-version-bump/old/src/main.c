#include "version.h"
int main(void) { return 0; }
