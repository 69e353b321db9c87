# hearth's git prompt for bash and zsh: one curl over the daemon's unix socket (a few ms; no node
# process, no git process). Source it from ~/.bashrc or ~/.zshrc:
#
#   . /path/to/hearth/plugins/git/prompt.sh
#   bash:  PS1='\w$(hearth_git_prompt)\$ '
#   zsh:   setopt prompt_subst; PROMPT='%~$(hearth_git_prompt)%# '
#
# Prints nothing outside a repository, or when the daemon is not running (it never starts one).
# Shows ` (branch ^ahead vbehind +staged ~unstaged ?untracked !conflicted $stashes)`, each count only
# when not zero; a detached HEAD shows its short commit id, an unborn one `(no commits)`.
# HEARTH_SOCKET overrides the socket path (default: $XDG_STATE_HOME/hearth/hearth.sock).

hearth_git_prompt() {
  local sock="${HEARTH_SOCKET:-${XDG_STATE_HOME:-$HOME/.local/state}/hearth/hearth.sock}"
  [ -S "$sock" ] || return 0
  local out
  out=$(curl -sf --max-time 2 --unix-socket "$sock" -G --data-urlencode "repo=$PWD" \
    -d format=text 'http://localhost/git/summary' 2>/dev/null) || return 0
  local key value branch='' head='' ahead=0 behind=0 staged=0 unstaged=0 untracked=0 conflicted=0 stashes=0
  while IFS='=' read -r key value; do
    case $key in
      branch) branch=$value ;;
      head) head=$value ;;
      ahead) ahead=$value ;;
      behind) behind=$value ;;
      staged) staged=$value ;;
      unstaged) unstaged=$value ;;
      untracked) untracked=$value ;;
      conflicted) conflicted=$value ;;
      stashes) stashes=$value ;;
    esac
  done <<HEARTH_EOF
$out
HEARTH_EOF
  local s
  if [ -n "$branch" ]; then s=$branch
  elif [ -n "$head" ]; then s=$(printf '%.7s' "$head")
  else s='no commits'
  fi
  [ "$ahead" != 0 ] && s="$s ^$ahead"
  [ "$behind" != 0 ] && s="$s v$behind"
  [ "$staged" != 0 ] && s="$s +$staged"
  [ "$unstaged" != 0 ] && s="$s ~$unstaged"
  [ "$untracked" != 0 ] && s="$s ?$untracked"
  [ "$conflicted" != 0 ] && s="$s !$conflicted"
  [ "$stashes" != 0 ] && s="$s \$$stashes"
  printf ' (%s)' "$s"
}
