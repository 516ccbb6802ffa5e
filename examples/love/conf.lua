-- conf.lua: the LÖVE window for the chat example (main.lua). No audio: the
-- game makes no sound, and CI's Xvfb has no sound card to open.

-- CI (--ci) has nobody to close LÖVE's error screen: print the error and quit.
-- Set here, before main.lua loads, so an error loading it is covered too.
for _, a in ipairs(arg or {}) do
  if a == "--ci" then
    love.errorhandler = function(msg) print(debug.traceback("love: error: " .. tostring(msg), 2)) end
  end
end
function love.conf(t)
  t.identity = "layer-chat-example"
  t.version = "11.4"
  t.window.title = "Layer chat (LÖVE)"
  t.window.width = 800
  t.window.height = 600
  t.window.vsync = 1
  t.modules.audio = false
  t.modules.sound = false
  t.modules.joystick = false
  t.modules.physics = false
  t.modules.video = false
end
