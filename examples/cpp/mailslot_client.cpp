// CppMailslotClient: opens the mailslot \\.\mailslot\HelloWorld and writes three
// messages.
//
// Usage: mailslot_client [NAME]
#include <cstdio>
#include <string>

#include "procwire.hpp"

int main(int argc, char** argv) try {
    const char* name = argc > 1 ? argv[1] : "\\\\.\\mailslot\\HelloWorld";
    ProcwireMailslotWriter* raw = nullptr;
    procwire::check(procwire_mailslot_writer_open(name, 5000, &raw), "procwire_mailslot_writer_open");
    procwire::MailslotWriter slot(raw);
    std::printf("The mailslot (%s) is opened.\n", name);
    for (const std::string message :
         {"Message one for mailslot", "Message two for mailslot", "Message three for mailslot"}) {
        procwire::check(procwire_mailslot_write(slot.get(),
                                                reinterpret_cast<const uint8_t*>(message.data()),
                                                message.size()),
                        "procwire_mailslot_write");
        std::printf("The message \"%s\" is written to the slot.\n", message.c_str());
    }
    return 0;
} catch (const procwire::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
}
