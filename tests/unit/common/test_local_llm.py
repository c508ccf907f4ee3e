import sys

import pytest

from tasks.common.local_llm import INSTALL_HINT, LocalLLMError, available, local_llm_server


def test_missing_server_package_is_one_line_with_the_install_command():
    # the test venv never has the optional local-llm group
    assert not available(sys.executable)
    with pytest.raises(LocalLLMError) as e:
        with local_llm_server(python=sys.executable):
            pass
    msg = str(e.value)
    assert "\n" not in msg and "llama-cpp-python" in msg and INSTALL_HINT in msg
