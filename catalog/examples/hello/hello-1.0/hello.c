#include <stdio.h>

int main(void) {
    puts("Hello from Bastion, built from source");
    return 0;
}
